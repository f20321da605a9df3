package schema

import (
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"time"

	"cuelang.org/go/cue"
)

// dnsLabel is #DNSLabel of schema.cue.
var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

const dnsLabelExpect = "a DNS label: 1-63 lowercase letters, digits or '-', starting and ending with a letter or digit"

// check applies the rules CUE cannot state to one cluster value. Rules
// skip fields that already have a diagnostic.
type check struct {
	l       *loader
	u       *unit
	v       cue.Value
	prefix  []cue.Selector
	covered map[string]bool
}

func (c *check) at(rel ...cue.Selector) cue.Value { return c.v.LookupPath(cue.MakePath(rel...)) }

func (c *check) full(rel []cue.Selector) []cue.Selector {
	return append(append([]cue.Selector{}, c.prefix...), rel...)
}

// isCovered reports whether the field or one of its ancestors already has
// a diagnostic.
func (c *check) isCovered(full []cue.Selector) bool {
	for i := len(full); i >= 0; i-- {
		if c.covered[cue.MakePath(full[:i]...).String()] {
			return true
		}
	}
	return false
}

func (c *check) report(rel []cue.Selector, summary, detail string) {
	full := c.full(rel)
	if c.isCovered(full) {
		return
	}
	path := cue.MakePath(full...).String()
	c.covered[path] = true
	c.l.diags = append(c.l.diags, Diagnostic{Pos: c.u.posOf(full, c.l), Path: path, Summary: summary, Detail: detail, rule: true})
}

// str returns the concrete string at rel.
func (c *check) str(rel ...cue.Selector) (string, bool) {
	v := c.at(rel...)
	if !v.Exists() || v.Err() != nil {
		return "", false
	}
	s, err := v.String()
	return s, err == nil
}

func sel(path string) []cue.Selector { return cue.ParsePath(path).Selectors() }

// group is a manager or worker group: its path and display name.
type group struct {
	rel  []cue.Selector
	name string
}

func (c *check) groups() []group {
	gs := []group{{rel: sel("managers"), name: "managers"}}
	it, err := c.at(sel("workers")...).Fields()
	if err != nil {
		return gs
	}
	for it.Next() {
		gs = append(gs, group{rel: []cue.Selector{cue.Str("workers"), it.Selector()}, name: WorkerGroupName(label(it.Selector()))})
	}
	return gs
}

func (c *check) rules() {
	groups := c.groups()
	for _, g := range groups[1:] {
		if n := label(g.rel[1]); !dnsLabel.MatchString(n) {
			c.report(g.rel, fmt.Sprintf("invalid worker group name %q", n), "expected "+dnsLabelExpect)
		}
	}
	for _, g := range groups {
		if !c.at(g.rel...).Exists() {
			continue
		}
		c.labels(g)
	}
	c.provider(groups)
	c.durations()
	c.crons()
	c.daemonRepo()
	c.daemonPlacement()
	c.clusterSize(groups)
	c.userData()
	c.controlCharacters()
}

// controlCharacters refuses a control character in any string of the spec
// (a newline or tab only in userData): no machine type, image, subnet or
// name holds one, and each is printed and sent to the cloud.
func (c *check) controlCharacters() {
	var walk func(v cue.Value, rel []cue.Selector)
	walk = func(v cue.Value, rel []cue.Selector) {
		switch v.IncompleteKind() {
		case cue.StringKind:
			s, err := v.String()
			if err != nil {
				return
			}
			text := len(rel) == 1 && label(rel[0]) == "userData"
			if strings.ContainsFunc(s, func(r rune) bool { return isControl(r) && !(text && (r == '\n' || r == '\t')) }) {
				c.report(rel, "a control character in the value", "values are names and ids, printed and sent to the cloud: remove it")
			}
		case cue.StructKind:
			it, err := v.Fields()
			if err != nil {
				return
			}
			for it.Next() {
				walk(it.Value(), append(append([]cue.Selector{}, rel...), it.Selector()))
			}
		case cue.ListKind:
			it, err := v.List()
			if err != nil {
				return
			}
			for i := 0; it.Next(); i++ {
				walk(it.Value(), append(append([]cue.Selector{}, rel...), cue.Index(i)))
			}
		}
	}
	walk(c.v, nil)
}

// daemonRepo refuses credentials in daemon.repo: the spec is not a place
// for secrets (the Git token is a Docker secret).
func (c *check) daemonRepo() {
	rel := sel("daemon.repo")
	s, ok := c.str(rel...)
	if !ok {
		return
	}
	if u, err := url.Parse(s); err == nil && u.User != nil {
		if _, has := u.User.Password(); has {
			c.report(rel, "a URL with a password",
				"remove the credentials from the URL; the daemon reads its Git token from the Docker secret swarmsync_git_token")
		}
	}
}

// daemonPlacement refuses an enabled daemon on managers that run no task:
// its service is global on the managers, and Swarm starts no task, a global
// service's included, on a drained or paused node (managers are drained by
// default).
func (c *check) daemonPlacement() {
	if on, err := c.at(sel("daemon.enabled")...).Bool(); err != nil || !on {
		return
	}
	v, _ := c.at(sel("managers.availability")...).Default()
	av, err := v.String()
	if err != nil || av == "active" {
		return
	}
	c.report(sel("daemon.enabled"), fmt.Sprintf("the daemon would run nowhere: managers.availability is %s", av),
		"Swarm starts no task, a global service's included, on a drained or paused node: set managers.availability: active")
}

// MaxClusterNodes bounds a cluster's nodes: managers plus every worker
// group (each group is bounded to 1000 by the schema).
const MaxClusterNodes = 2000

func (c *check) clusterSize(groups []group) {
	total := 0
	for _, g := range groups {
		if n, err := c.at(append(g.rel, cue.Str("count"))...).Int64(); err == nil && n > 0 {
			total += int(n)
		}
	}
	if total > MaxClusterNodes {
		c.report(sel("workers"), fmt.Sprintf("the cluster has %d nodes (managers and every worker group)", total),
			fmt.Sprintf("at most %d nodes per cluster: split it into several clusters", MaxClusterNodes))
	}
}

func (c *check) userData() {
	tmpl, ok := c.str(sel("userData")...)
	if !ok {
		return
	}
	kind := "local"
	if c.at(sel("provider.aws")...).Exists() {
		kind = "aws"
	}
	var daemon *Daemon
	if v := c.at(sel("daemon")...); v.Exists() {
		var d Daemon
		if v.Decode(&d) == nil && d.Enabled {
			daemon = &d
		}
	}
	if msg := CheckUserData(tmpl, kind, daemon); msg != "" {
		c.report(sel("userData"), msg, `the template sees .Cluster, .Group, .Role, .Init, .ManagerAddr, .Provider and .Daemon, quotes with {{shq X}}, and writes the join command with {{join "ADVERTISE_ADDR"}}`)
	}
}

func (c *check) labels(g group) {
	it, err := c.at(append(g.rel, cue.Str("labels"))...).Fields()
	if err != nil {
		return
	}
	for it.Next() {
		k := label(it.Selector())
		at := append(append([]cue.Selector{}, g.rel...), cue.Str("labels"), it.Selector())
		if strings.HasPrefix(k, "swarmsync.") {
			c.report(at, fmt.Sprintf("label %q uses the reserved prefix swarmsync.", k),
				"swarmsync writes swarmsync.* labels itself; choose another key")
			continue
		}
		if msg := checkLabelKey(k); msg != "" {
			c.report(at, fmt.Sprintf("invalid label key %q: %s", k, msg), labelKeyRule)
			continue
		}
		if v, err := it.Value().String(); err == nil && strings.ContainsFunc(v, isControl) {
			c.report(at, fmt.Sprintf("label %s has a control character in its value", k),
				"a label value is text shown in plans and terminals: remove the control characters")
		}
	}
}

// labelKeyRule is Docker's rule for label keys (docs.docker.com, "Docker
// object labels").
const labelKeyRule = "Docker's rule for label keys: lowercase letters, digits, '.' and '-', " +
	"starting with a letter and ending with a letter or digit, no '..' or '--', at most 128 characters; " +
	"com.docker.*, io.docker.* and org.dockerproject.* are reserved by Docker"

// checkLabelKey says what is wrong with a node label key, or "".
func checkLabelKey(k string) string {
	switch {
	case k == "":
		return "empty"
	case len(k) > 128:
		return "longer than 128 characters"
	case strings.HasPrefix(k, "com.docker."), strings.HasPrefix(k, "io.docker."), strings.HasPrefix(k, "org.dockerproject."):
		return "the prefix is reserved by Docker"
	case strings.Contains(k, ".."), strings.Contains(k, "--"):
		return "consecutive '.' or '-'"
	case k[0] < 'a' || k[0] > 'z':
		return "does not start with a lowercase letter"
	}
	last := k[len(k)-1]
	if (last < 'a' || last > 'z') && (last < '0' || last > '9') {
		return "does not end with a lowercase letter or digit"
	}
	for _, r := range k {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '.' && r != '-' {
			return fmt.Sprintf("character %q is not allowed", r)
		}
	}
	return ""
}

// isControl reports a C0 or C1 control character or DEL.
func isControl(r rune) bool { return r < 0x20 || (r >= 0x7f && r <= 0x9f) }

func (c *check) provider(groups []group) {
	if !c.at(sel("provider")...).Exists() {
		return // reported by the schema as a missing required field
	}
	aws := c.at(sel("provider.aws")...).Exists()
	local := c.at(sel("provider.local")...).Exists()
	switch {
	case aws && local:
		c.report(sel("provider"), "two providers are set (aws and local)", "set exactly one of provider.aws or provider.local")
		return
	case !aws && !local:
		c.report(sel("provider"), "no provider is set", "set exactly one of provider.aws (region) or provider.local (subnet)")
		return
	}
	if local {
		for _, g := range groups {
			if tg := append(append([]cue.Selector{}, g.rel...), cue.Str("targetGroups")); c.at(tg...).Exists() {
				c.report(tg, "target groups need provider aws", "remove targetGroups, or use provider.aws")
			}
		}
		if c.at(sel("loadBalancer")...).Exists() {
			c.report(sel("loadBalancer"), "a load balancer needs provider aws", "remove loadBalancer, or use provider.aws")
		}
		if s, ok := c.str(sel("provider.local.subnet")...); ok {
			if msg := checkSubnet(s); msg != "" {
				c.report(sel("provider.local.subnet"), fmt.Sprintf("invalid subnet %q: %s", s, msg), "expected an IPv4 CIDR from /16 to /28, like 10.231.0.0/24")
			}
		}
		return
	}
	for _, g := range groups {
		if !c.at(g.rel...).Exists() {
			continue
		}
		inst := append(append([]cue.Selector{}, g.rel...), cue.Str("instance"))
		for _, f := range []struct{ field, example string }{
			{"type", "t3.medium"}, {"image", "ami-0123456789abcdef0"},
		} {
			if _, ok := c.str(append(inst, cue.Str(f.field))...); !ok {
				c.report(append(inst, cue.Str(f.field)), "missing required field",
					fmt.Sprintf("provider aws needs instance.%s for every group (%s), e.g. %s", f.field, g.name, f.example))
			}
		}
		subnets := append(inst, cue.Str("subnets"))
		if n, err := c.at(subnets...).Len().Int64(); err != nil || n == 0 {
			c.report(subnets, "missing required field",
				fmt.Sprintf("provider aws needs instance.subnets for every group (%s): a list of at least one subnet id", g.name))
		}
	}
	for _, g := range groups {
		tgs := append(append([]cue.Selector{}, g.rel...), cue.Str("targetGroups"))
		it, err := c.at(tgs...).List()
		if err != nil {
			continue
		}
		for i := 0; it.Next(); i++ {
			at := append(append([]cue.Selector{}, tgs...), cue.Index(i))
			if s, ok := c.str(at...); ok && !elbARN(s, "targetgroup") {
				c.report(at, fmt.Sprintf("invalid target group ARN %q", s),
					"expected an ELBv2 target group ARN like arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web/0123456789abcdef")
			}
		}
	}
	if s, ok := c.str(sel("loadBalancer.arn")...); ok && !elbARN(s, "loadbalancer") {
		c.report(sel("loadBalancer.arn"), fmt.Sprintf("invalid load balancer ARN %q", s),
			"expected an ELBv2 load balancer ARN like arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/net/web/0123456789abcdef")
	}
	if lbg, ok := c.str(sel("loadBalancer.group")...); ok && !c.at(append(sel("workers"), cue.Str(lbg))...).Exists() {
		c.report(sel("loadBalancer.group"), fmt.Sprintf("worker group %q is not declared", lbg),
			"name a worker group of this cluster: its nodes receive the listeners' traffic")
	}
}

// elbARN reports whether s is an ELBv2 ARN of the resource kind
// ("targetgroup", "loadbalancer").
func elbARN(s, kind string) bool {
	return elbARNRe.MatchString(s) && strings.Contains(s, ":"+kind+"/")
}

var elbARNRe = regexp.MustCompile(`^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:[0-9]{12}:[a-z]+/[A-Za-z0-9/_.-]+$`)

// checkSubnet returns what is wrong with a local subnet, or "".
func checkSubnet(s string) string {
	p, err := netip.ParsePrefix(s)
	switch {
	case err != nil:
		return "not a CIDR"
	case !p.Addr().Is4():
		return "not IPv4"
	case p.Bits() < 16 || p.Bits() > 28:
		return fmt.Sprintf("prefix /%d is outside /16../28", p.Bits())
	case p.Masked() != p:
		return fmt.Sprintf("host bits are set (the network is %s)", p.Masked())
	}
	return ""
}

// durationField is a duration in the spec and the smallest value it takes.
type durationField struct {
	rel      []cue.Selector
	positive bool
}

func (c *check) windows() []cue.Selector {
	var idx []cue.Selector
	it, err := c.at(sel("schedule.disruptionWindows")...).List()
	if err != nil {
		return nil
	}
	for i := 0; it.Next(); i++ {
		idx = append(idx, cue.Index(i))
	}
	return idx
}

func (c *check) durations() {
	fields := []durationField{
		{sel("update.delay"), false},
		{sel("update.monitor"), false},
		{sel("update.joinTimeout"), true},
		{sel("update.drainTimeout"), true},
		{sel("update.downGrace"), false},
	}
	for _, i := range c.windows() {
		fields = append(fields, durationField{append(sel("schedule.disruptionWindows"), i, cue.Str("duration")), true})
	}
	for _, f := range fields {
		s, ok := c.str(f.rel...)
		if !ok {
			continue
		}
		d, err := time.ParseDuration(s)
		switch {
		case err != nil:
			c.report(f.rel, fmt.Sprintf("invalid duration %q", s), "expected a duration like 30s, 5m or 1h30m (units ns, us, ms, s, m, h)")
		case d < 0 || f.positive && d == 0:
			want := "at least 0s"
			if f.positive {
				want = "greater than 0s"
			}
			c.report(f.rel, fmt.Sprintf("invalid duration %q", s), "expected a duration "+want)
		}
	}
}

func (c *check) crons() {
	fields := [][]cue.Selector{sel("schedule.reconcile"), sel("schedule.rotateJoinTokens")}
	for _, i := range c.windows() {
		fields = append(fields, append(sel("schedule.disruptionWindows"), i, cue.Str("cron")))
	}
	for _, rel := range fields {
		s, ok := c.str(rel...)
		if !ok {
			continue
		}
		if _, err := cronParser.Parse(s); err != nil {
			c.report(rel, fmt.Sprintf("invalid cron expression %q: %v", s, err),
				`expected five fields (minute hour day-of-month month day-of-week, e.g. "0 2 * * SAT") or a descriptor ("@every 1m", "@hourly", "@daily", "@weekly")`)
		}
	}
}
