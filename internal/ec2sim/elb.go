package ec2sim

import (
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ELBAPIVersion is the ELBv2 Query API version the emulator speaks on the
// same endpoint as EC2 (requests are told apart by Version).
const ELBAPIVersion = "2015-12-01"

const (
	elbXMLNS  = "http://elasticloadbalancing.amazonaws.com/doc/" + ELBAPIVersion + "/"
	arnPrefix = "arn:aws:elasticloadbalancing:us-east-1:" + ownerID + ":"
)

var tgNameRe = regexp.MustCompile(`^[A-Za-z0-9-]+$`)

// DefaultDeregistrationDelay is ELBv2's default
// deregistration_delay.timeout_seconds.
const DefaultDeregistrationDelay = 300 * time.Second

type elbState struct {
	lbs       map[string]*loadBalancer
	tgs       map[string]*targetGroup
	listeners map[string]*listener
}

type loadBalancer struct {
	arn, name string
}

type targetGroup struct {
	arn, name, protocol string
	port                int
	delay               time.Duration
	tags                map[string]string
	targets             map[string]*target
}

type target struct {
	id           string
	port         int
	deregistered time.Time // zero while registered
}

type listener struct {
	arn, lb, protocol, tg string
	port                  int
	tags                  map[string]string
}

// Target is a snapshot of a registered target and its state.
type Target struct {
	ID    string
	State string // healthy, unhealthy, draining
}

func (s *Server) elbInit() {
	if s.elb.lbs == nil {
		s.elb = elbState{lbs: map[string]*loadBalancer{}, tgs: map[string]*targetGroup{}, listeners: map[string]*listener{}}
	}
}

func (s *Server) nextHex() string {
	s.idSeq++
	return fmt.Sprintf("%016x", s.idSeq)
}

// AddLoadBalancer creates a network load balancer (test setup) and
// returns its ARN.
func (s *Server) AddLoadBalancer(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.elbInit()
	lb := &loadBalancer{arn: arnPrefix + "loadbalancer/net/" + name + "/" + s.nextHex(), name: name}
	s.elb.lbs[lb.arn] = lb
	return lb.arn
}

// AddTargetGroup creates an instance target group (test setup) whose
// deregistration delay is delay, and returns its ARN.
func (s *Server) AddTargetGroup(name string, port int, delay time.Duration) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.elbInit()
	return s.newTG(name, "TCP", port, delay, nil).arn
}

func (s *Server) newTG(name, proto string, port int, delay time.Duration, tags map[string]string) *targetGroup {
	tg := &targetGroup{arn: arnPrefix + "targetgroup/" + name + "/" + s.nextHex(), name: name, protocol: proto, port: port,
		delay: delay, tags: tags, targets: map[string]*target{}}
	s.elb.tgs[tg.arn] = tg
	return tg
}

// Targets returns the targets of a target group (nil when it does not
// exist), by id.
func (s *Server) Targets(tgARN string) []Target {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.elbInit()
	tg, ok := s.elb.tgs[tgARN]
	if !ok {
		return nil
	}
	now := s.clock.Now()
	s.expireTargets(tg, now)
	out := []Target{}
	for _, id := range slices.Sorted(maps.Keys(tg.targets)) {
		out = append(out, Target{ID: id, State: s.targetState(tg.targets[id], now)})
	}
	return out
}

// ListenerPorts returns the ports of the load balancer's listeners, sorted.
func (s *Server) ListenerPorts(lbARN string) []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.elbInit()
	var out []int
	for _, l := range s.elb.listeners {
		if l.lb == lbARN {
			out = append(out, l.port)
		}
	}
	slices.Sort(out)
	return out
}

// expireTargets drops targets whose deregistration delay is over.
func (s *Server) expireTargets(tg *targetGroup, now time.Time) {
	for id, t := range tg.targets {
		if !t.deregistered.IsZero() && !now.Before(t.deregistered.Add(tg.delay)) {
			delete(tg.targets, id)
		}
	}
}

func (s *Server) targetState(t *target, now time.Time) string {
	if !t.deregistered.IsZero() {
		return "draining"
	}
	if in, ok := s.instances[t.id]; ok && in.state(now, s.opts) == StateRunning {
		return "healthy"
	}
	return "unhealthy"
}

// serveELB handles one ELBv2 Query request.
func (s *Server) serveELB(w http.ResponseWriter, reqID, action string, p params) {
	if apiErr := s.admit(action); apiErr != nil {
		writeELBError(w, reqID, apiErr)
		return
	}
	s.mu.Lock()
	s.elbInit()
	var (
		body string
		err  *APIError
	)
	switch action {
	case "DescribeLoadBalancers":
		body, err = s.describeLoadBalancers(p)
	case "DescribeListeners":
		body, err = s.describeListeners(p)
	case "DescribeTags":
		body, err = s.describeELBTags(p)
	case "DescribeTargetGroups":
		body, err = s.describeTargetGroups(p)
	case "DescribeTargetGroupAttributes":
		body, err = s.describeTargetGroupAttributes(p)
	case "DescribeTargetHealth":
		body, err = s.describeTargetHealth(p)
	case "RegisterTargets":
		body, err = s.registerTargets(p, true)
	case "DeregisterTargets":
		body, err = s.registerTargets(p, false)
	case "CreateTargetGroup":
		body, err = s.createTargetGroup(p)
	case "DeleteTargetGroup":
		body, err = s.deleteTargetGroup(p)
	case "CreateListener":
		body, err = s.createListener(p)
	case "DeleteListener":
		body, err = s.deleteListener(p)
	default:
		err = errorf(http.StatusBadRequest, "InvalidAction", "The action %s is not valid for this web service.", action)
	}
	s.mu.Unlock()
	if err != nil {
		writeELBError(w, reqID, err)
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(http.StatusOK)
	_, _ = fmt.Fprintf(w, `<%sResponse xmlns="%s"><%sResult>%s</%sResult><ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata></%sResponse>`,
		action, elbXMLNS, action, body, action, reqID, action)
}

func writeELBError(w http.ResponseWriter, reqID string, e *APIError) {
	var b xw
	b.open("ErrorResponse")
	b.open("Error")
	b.text("Type", "Sender")
	b.text("Code", e.Code)
	b.text("Message", e.Message)
	b.close("Error")
	b.text("RequestId", reqID)
	b.close("ErrorResponse")
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(e.Status)
	_, _ = w.Write([]byte(b.String()))
}

func elbNotFound(code, what, arn string) *APIError {
	return errorf(http.StatusBadRequest, code, "%s '%s' not found", what, arn)
}

func (p params) members(prefix string) []string { return p.list(prefix + ".member") }

func (w *xw) elbTags(tags map[string]string) {
	w.open("Tags")
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		w.open("member")
		w.text("Key", k)
		w.text("Value", tags[k])
		w.close("member")
	}
	w.close("Tags")
}

func parseELBTags(p params) map[string]string {
	tags := map[string]string{}
	for _, n := range p.indexes("Tags.member") {
		pre := "Tags.member." + strconv.Itoa(n)
		tags[p.get(pre+".Key")] = p.get(pre + ".Value")
	}
	return tags
}

func (s *Server) describeLoadBalancers(p params) (string, *APIError) {
	var w xw
	w.open("LoadBalancers")
	for _, arn := range p.members("LoadBalancerArns") {
		lb, ok := s.elb.lbs[arn]
		if !ok {
			return "", elbNotFound("LoadBalancerNotFound", "Load balancer", arn)
		}
		w.open("member")
		w.text("LoadBalancerArn", lb.arn)
		w.text("LoadBalancerName", lb.name)
		w.text("Type", "network")
		w.text("Scheme", "internal")
		w.text("VpcId", VPC)
		w.WriteString("<State><Code>active</Code></State>")
		w.close("member")
	}
	w.close("LoadBalancers")
	return w.String(), nil
}

func (s *Server) describeListeners(p params) (string, *APIError) {
	lbARN := p.get("LoadBalancerArn")
	if _, ok := s.elb.lbs[lbARN]; !ok {
		return "", elbNotFound("LoadBalancerNotFound", "Load balancer", lbARN)
	}
	var w xw
	w.open("Listeners")
	for _, arn := range slices.Sorted(maps.Keys(s.elb.listeners)) {
		l := s.elb.listeners[arn]
		if l.lb != lbARN {
			continue
		}
		w.open("member")
		w.text("ListenerArn", l.arn)
		w.text("LoadBalancerArn", l.lb)
		w.text("Protocol", l.protocol)
		w.int("Port", l.port)
		w.WriteString("<DefaultActions><member><Type>forward</Type>")
		w.text("TargetGroupArn", l.tg)
		w.WriteString("</member></DefaultActions>")
		w.close("member")
	}
	w.close("Listeners")
	return w.String(), nil
}

func (s *Server) describeELBTags(p params) (string, *APIError) {
	arns := p.members("ResourceArns")
	if len(arns) > 20 {
		return "", errorf(http.StatusBadRequest, "ValidationError", "1 validation error detected: Value at 'resourceArns' failed to satisfy constraint: Member must have length less than or equal to 20")
	}
	var w xw
	w.open("TagDescriptions")
	for _, arn := range arns {
		var tags map[string]string
		switch {
		case s.elb.listeners[arn] != nil:
			tags = s.elb.listeners[arn].tags
		case s.elb.tgs[arn] != nil:
			tags = s.elb.tgs[arn].tags
		case s.elb.lbs[arn] != nil:
		default:
			return "", elbNotFound("ListenerNotFound", "Resource", arn)
		}
		w.open("member")
		w.text("ResourceArn", arn)
		w.elbTags(tags)
		w.close("member")
	}
	w.close("TagDescriptions")
	return w.String(), nil
}

func (s *Server) writeTG(w *xw, tg *targetGroup) {
	w.open("member")
	w.text("TargetGroupArn", tg.arn)
	w.text("TargetGroupName", tg.name)
	w.text("Protocol", tg.protocol)
	w.int("Port", tg.port)
	w.text("VpcId", VPC)
	w.text("TargetType", "instance")
	w.open("LoadBalancerArns")
	for _, l := range s.elb.listeners {
		if l.tg == tg.arn {
			w.text("member", l.lb)
		}
	}
	w.close("LoadBalancerArns")
	w.close("member")
}

func (s *Server) describeTargetGroups(p params) (string, *APIError) {
	arns := p.members("TargetGroupArns")
	var w xw
	w.open("TargetGroups")
	if len(arns) == 0 {
		arns = slices.Sorted(maps.Keys(s.elb.tgs))
	}
	for _, arn := range arns {
		tg, ok := s.elb.tgs[arn]
		if !ok {
			return "", elbNotFound("TargetGroupNotFound", "Target group", arn)
		}
		s.writeTG(&w, tg)
	}
	w.close("TargetGroups")
	return w.String(), nil
}

func (s *Server) describeTargetGroupAttributes(p params) (string, *APIError) {
	tg, ok := s.elb.tgs[p.get("TargetGroupArn")]
	if !ok {
		return "", elbNotFound("TargetGroupNotFound", "Target group", p.get("TargetGroupArn"))
	}
	return "<Attributes><member><Key>deregistration_delay.timeout_seconds</Key><Value>" +
		strconv.Itoa(int(tg.delay/time.Second)) + "</Value></member></Attributes>", nil
}

func (s *Server) describeTargetHealth(p params) (string, *APIError) {
	tg, ok := s.elb.tgs[p.get("TargetGroupArn")]
	if !ok {
		return "", elbNotFound("TargetGroupNotFound", "Target group", p.get("TargetGroupArn"))
	}
	now := s.clock.Now()
	s.expireTargets(tg, now)
	var w xw
	w.open("TargetHealthDescriptions")
	for _, id := range slices.Sorted(maps.Keys(tg.targets)) {
		t := tg.targets[id]
		w.open("member")
		w.open("Target")
		w.text("Id", t.id)
		w.int("Port", t.port)
		w.close("Target")
		w.text("HealthCheckPort", strconv.Itoa(t.port))
		w.open("TargetHealth")
		st := s.targetState(t, now)
		w.text("State", st)
		if st == "draining" {
			w.text("Reason", "Target.DeregistrationInProgress")
		}
		w.close("TargetHealth")
		w.close("member")
	}
	w.close("TargetHealthDescriptions")
	return w.String(), nil
}

func (s *Server) registerTargets(p params, register bool) (string, *APIError) {
	tg, ok := s.elb.tgs[p.get("TargetGroupArn")]
	if !ok {
		return "", elbNotFound("TargetGroupNotFound", "Target group", p.get("TargetGroupArn"))
	}
	now := s.clock.Now()
	s.expireTargets(tg, now)
	type req struct {
		id   string
		port int
	}
	var reqs []req
	for _, n := range p.indexes("Targets.member") {
		pre := "Targets.member." + strconv.Itoa(n)
		port := tg.port
		if v := p.get(pre + ".Port"); v != "" {
			port, _ = strconv.Atoi(v)
		}
		reqs = append(reqs, req{p.get(pre + ".Id"), port})
	}
	if len(reqs) == 0 {
		return "", errorf(http.StatusBadRequest, "ValidationError", "Targets must not be empty")
	}
	for _, r := range reqs {
		if register {
			in, ok := s.instances[r.id]
			if !ok || in.state(now, s.opts) != StateRunning {
				return "", errorf(http.StatusBadRequest, "InvalidTarget", "The following targets are not in a running state and cannot be registered: '%s'", r.id)
			}
		} else if _, ok := tg.targets[r.id]; !ok {
			return "", errorf(http.StatusBadRequest, "InvalidTarget", "The following targets are not registered in target group: '%s'", r.id)
		}
	}
	for _, r := range reqs {
		if register {
			tg.targets[r.id] = &target{id: r.id, port: r.port}
		} else if t := tg.targets[r.id]; t.deregistered.IsZero() {
			t.deregistered = now
			if tg.delay == 0 {
				delete(tg.targets, r.id)
			}
		}
	}
	return "", nil
}

func (s *Server) createTargetGroup(p params) (string, *APIError) {
	name, proto := p.get("Name"), p.get("Protocol")
	port, _ := strconv.Atoi(p.get("Port"))
	if name == "" || len(name) > 32 || proto == "" || port < 1 || port > 65535 {
		return "", errorf(http.StatusBadRequest, "ValidationError", "a target group needs a Name of 1-32 characters, a Protocol and a Port from 1 to 65535")
	}
	if !tgNameRe.MatchString(name) || strings.Contains(name, "--") || strings.HasPrefix(name, "-") || strings.HasSuffix(name, "-") {
		return "", errorf(http.StatusBadRequest, "ValidationError", "Value '%s' at 'targetGroup.targetGroupArn.targetGroupName' failed to satisfy constraint: Member must satisfy regular expression pattern: (?!.*--)(?!^-)(?!.*-$)^[A-Za-z0-9-]+$", name)
	}
	if vpc := p.get("VpcId"); vpc != VPC {
		return "", errorf(http.StatusBadRequest, "ValidationError", "The VPC ID '%s' is not found", vpc)
	}
	for _, tg := range s.elb.tgs {
		if tg.name == name {
			if tg.protocol != proto || tg.port != port {
				return "", errorf(http.StatusBadRequest, "DuplicateTargetGroupName", "A target group with the same name '%s' exists, but with different settings", name)
			}
			var w xw
			w.open("TargetGroups")
			s.writeTG(&w, tg)
			w.close("TargetGroups")
			return w.String(), nil
		}
	}
	tg := s.newTG(name, proto, port, s.opts.DeregistrationDelay, parseELBTags(p))
	var w xw
	w.open("TargetGroups")
	s.writeTG(&w, tg)
	w.close("TargetGroups")
	return w.String(), nil
}

func (s *Server) deleteTargetGroup(p params) (string, *APIError) {
	arn := p.get("TargetGroupArn")
	if _, ok := s.elb.tgs[arn]; !ok {
		return "", nil // ELBv2 deletes idempotently
	}
	for _, l := range s.elb.listeners {
		if l.tg == arn {
			return "", errorf(http.StatusBadRequest, "ResourceInUse", "Target group '%s' is currently in use by a listener or a rule", arn)
		}
	}
	delete(s.elb.tgs, arn)
	return "", nil
}

func (s *Server) createListener(p params) (string, *APIError) {
	lbARN := p.get("LoadBalancerArn")
	lb, ok := s.elb.lbs[lbARN]
	if !ok {
		return "", elbNotFound("LoadBalancerNotFound", "Load balancer", lbARN)
	}
	proto := p.get("Protocol")
	port, _ := strconv.Atoi(p.get("Port"))
	tgARN := p.get("DefaultActions.member.1.TargetGroupArn")
	if p.get("DefaultActions.member.1.Type") != "forward" || tgARN == "" {
		return "", errorf(http.StatusBadRequest, "ValidationError", "this emulator supports one forward default action")
	}
	if _, ok := s.elb.tgs[tgARN]; !ok {
		return "", elbNotFound("TargetGroupNotFound", "Target group", tgARN)
	}
	for _, l := range s.elb.listeners {
		if l.lb == lbARN && l.port == port {
			if l.protocol == proto && l.tg == tgARN {
				return "<Listeners>" + listenerXML(l) + "</Listeners>", nil // same settings: idempotent
			}
			return "", errorf(http.StatusBadRequest, "DuplicateListener", "A listener already exists on this port for this load balancer '%s'", lbARN)
		}
	}
	l := &listener{arn: arnPrefix + "listener/net/" + lb.name + "/" + s.nextHex(), lb: lbARN, protocol: proto, port: port, tg: tgARN, tags: parseELBTags(p)}
	s.elb.listeners[l.arn] = l
	return "<Listeners>" + listenerXML(l) + "</Listeners>", nil
}

func listenerXML(l *listener) string {
	var w xw
	w.open("member")
	w.text("ListenerArn", l.arn)
	w.text("LoadBalancerArn", l.lb)
	w.text("Protocol", l.protocol)
	w.int("Port", l.port)
	w.WriteString("<DefaultActions><member><Type>forward</Type>")
	w.text("TargetGroupArn", l.tg)
	w.WriteString("</member></DefaultActions>")
	w.close("member")
	return w.String()
}

func (s *Server) deleteListener(p params) (string, *APIError) {
	arn := p.get("ListenerArn")
	if _, ok := s.elb.listeners[arn]; !ok {
		return "", elbNotFound("ListenerNotFound", "Listener", arn)
	}
	delete(s.elb.listeners, arn)
	return "", nil
}

// isELB reports whether a request is for ELBv2 (by its Version).
func isELB(p params) bool { return strings.TrimSpace(p.get("Version")) == ELBAPIVersion }
