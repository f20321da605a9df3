package ec2sim

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

const ownerID = "123456789012"

// validID reports whether id is prefix followed by 8 or 17 lowercase hex digits.
func validID(id, prefix string) bool {
	hexPart, ok := strings.CutPrefix(id, prefix)
	if !ok || (len(hexPart) != 8 && len(hexPart) != 17) {
		return false
	}
	for _, c := range hexPart {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func checkInstanceIDs(ids []string) *APIError {
	for _, id := range ids {
		if !validID(id, "i-") {
			return errorf(http.StatusBadRequest, "InvalidInstanceID.Malformed", "Invalid id: %q", id)
		}
	}
	return nil
}

func notFound(missing []string) *APIError {
	if len(missing) == 1 {
		return errorf(http.StatusBadRequest, "InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", missing[0])
	}
	return errorf(http.StatusBadRequest, "InvalidInstanceID.NotFound", "The instance IDs '%s' do not exist", strings.Join(missing, ", "))
}

func (s *Server) describeInstances(p params) (string, *APIError) {
	ids := p.list("InstanceId")
	fs, apiErr := parseFilters(p)
	if apiErr != nil {
		return "", apiErr
	}
	limit := 0
	if p.has("MaxResults") {
		if len(ids) > 0 {
			return "", errorf(http.StatusBadRequest, "InvalidParameterCombination", "The parameter instancesSet cannot be used with the parameter maxResults")
		}
		n, err := strconv.Atoi(p.get("MaxResults"))
		if err != nil || n < 5 || n > 1000 {
			return "", errorf(http.StatusBadRequest, "InvalidParameterValue", "Value ( %s ) for parameter maxResults is invalid. Expecting a value between 5 and 1000.", p.get("MaxResults"))
		}
		limit = n
	}
	if apiErr := checkInstanceIDs(ids); apiErr != nil {
		return "", apiErr
	}
	digest := queryDigest(ids, fs)
	var after uint64
	if tok := p.get("NextToken"); tok != "" {
		seq, ok := parseToken(tok, digest)
		if !ok {
			return "", errorf(http.StatusBadRequest, "InvalidPaginationToken", "The pagination token is not valid for this request: repeat the request's filters and MaxResults, or start again without NextToken")
		}
		after = seq
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	s.expire(now)
	defer func() {
		for _, in := range s.order {
			if in.hiddenDescribes > 0 {
				in.hiddenDescribes--
			}
		}
	}()
	want := map[string]bool{}
	if len(ids) > 0 {
		var missing []string
		for _, id := range ids {
			in, ok := s.instances[id]
			if !ok || in.hiddenDescribes > 0 {
				missing = append(missing, id)
			}
			want[id] = true
		}
		if len(missing) > 0 {
			return "", notFound(missing)
		}
	}
	var page []*instance
	next := ""
	for _, in := range s.order {
		if in.seq <= after || in.hiddenDescribes > 0 {
			continue
		}
		if len(want) > 0 && !want[in.id] {
			continue
		}
		if !matches(in, fs, now, s.opts) {
			continue
		}
		if limit > 0 && len(page) == limit {
			next = makeToken(page[len(page)-1].seq, digest)
			break
		}
		page = append(page, in)
	}

	var w xw
	if len(page) == 0 {
		w.WriteString("<reservationSet/>")
	} else {
		w.open("reservationSet")
		for i := 0; i < len(page); {
			r := page[i].reservation
			w.open("item")
			w.text("reservationId", r.id)
			w.text("ownerId", ownerID)
			w.WriteString("<groupSet/>")
			w.open("instancesSet")
			for ; i < len(page) && page[i].reservation == r; i++ {
				w.instance(page[i], page[i].state(now, s.opts))
			}
			w.close("instancesSet")
			w.close("item")
		}
		w.close("reservationSet")
	}
	if next != "" {
		w.text("nextToken", next)
	}
	return w.String(), nil
}

// queryDigest identifies a query so a NextToken is only valid for it.
func queryDigest(ids []string, fs []filter) string {
	h := sha256.New()
	for _, id := range ids {
		fmt.Fprintf(h, "id=%s\n", id)
	}
	for _, f := range fs {
		fmt.Fprintf(h, "f=%s\n", f.name)
		for _, v := range f.values {
			fmt.Fprintf(h, "v=%s\n", v)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func makeToken(seq uint64, digest string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf("v1.%d.%s", seq, digest)))
}

func parseToken(tok, digest string) (uint64, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return 0, false
	}
	parts := strings.Split(string(raw), ".")
	if len(parts) != 3 || parts[0] != "v1" || parts[2] != digest {
		return 0, false
	}
	seq, err := strconv.ParseUint(parts[1], 10, 64)
	return seq, err == nil
}

// launchDigest canonicalises every launch parameter except the token, so a
// repeated ClientToken can be checked for the same request.
func launchDigest(p params) string {
	keys := make([]string, 0, len(p))
	for k := range p {
		switch k {
		case "Action", "Version", "ClientToken":
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%s=%q\n", k, p[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

var validResourceTypes = map[string]bool{"instance": true, "volume": true, "network-interface": true}

func parseTags(p params, prefix string) (map[string]string, *APIError) {
	tags := map[string]string{}
	for _, n := range p.indexes(prefix) {
		pre := prefix + "." + strconv.Itoa(n)
		k, v := p.get(pre+".Key"), p.get(pre+".Value")
		switch {
		case k == "":
			return nil, errorf(http.StatusBadRequest, "InvalidParameterValue", "Tag key must not be empty (%s.Key)", pre)
		case strings.HasPrefix(strings.ToLower(k), "aws:"):
			return nil, errorf(http.StatusBadRequest, "InvalidParameterValue", "Tag keys starting with 'aws:' are reserved for internal use")
		case len(k) > 128 || len(v) > 256:
			return nil, errorf(http.StatusBadRequest, "InvalidParameterValue", "Tag %q is too long: keys are limited to 128 and values to 256 characters", k)
		}
		tags[k] = v
	}
	if len(tags) > 50 {
		return nil, errorf(http.StatusBadRequest, "TagLimitExceeded", "The maximum number of tags per resource is 50")
	}
	return tags, nil
}

func (s *Server) runInstances(p params) (string, *APIError) {
	image := p.get("ImageId")
	if image == "" {
		return "", errorf(http.StatusBadRequest, "MissingParameter", "The request must contain the parameter ImageId")
	}
	if !validID(image, "ami-") {
		return "", errorf(http.StatusBadRequest, "InvalidAMIID.Malformed", "Invalid id: %q (expecting \"ami-...\")", image)
	}
	minCount, err1 := strconv.Atoi(p.get("MinCount"))
	maxCount, err2 := strconv.Atoi(p.get("MaxCount"))
	switch {
	case !p.has("MinCount") || !p.has("MaxCount"):
		return "", errorf(http.StatusBadRequest, "MissingParameter", "The request must contain the parameters MinCount and MaxCount")
	case err1 != nil || err2 != nil || minCount < 1 || maxCount < minCount:
		return "", errorf(http.StatusBadRequest, "InvalidParameterValue", "MinCount (%s) must be at least 1 and MaxCount (%s) at least MinCount", p.get("MinCount"), p.get("MaxCount"))
	}
	instanceType := p.get("InstanceType")
	if instanceType == "" {
		instanceType = "m1.small"
	}
	token := p.get("ClientToken")
	if len(token) > 64 {
		return "", errorf(http.StatusBadRequest, "InvalidParameterValue", "The client token must be at most 64 ASCII characters")
	}
	var userData []byte
	if ud := p.get("UserData"); ud != "" {
		b, err := base64.StdEncoding.DecodeString(ud)
		if err != nil {
			return "", errorf(http.StatusBadRequest, "InvalidUserData.Malformed", "Invalid BASE64 encoding of user data.")
		}
		if len(b) > 16*1024 {
			return "", errorf(http.StatusBadRequest, "InvalidParameterValue", "User data is limited to 16384 bytes")
		}
		userData = b
	}
	instanceTags := map[string]string{}
	for _, n := range p.indexes("TagSpecification") {
		pre := "TagSpecification." + strconv.Itoa(n)
		rt := p.get(pre + ".ResourceType")
		if !validResourceTypes[rt] {
			return "", errorf(http.StatusBadRequest, "InvalidParameterValue", "'%s' is not a valid taggable resource type for this operation.", rt)
		}
		tags, apiErr := parseTags(p, pre+".Tag")
		if apiErr != nil {
			return "", apiErr
		}
		if rt == "instance" {
			instanceTags = tags
		}
	}
	profile := p.get("IamInstanceProfile.Name")
	if arn := p.get("IamInstanceProfile.Arn"); profile == "" && arn != "" {
		profile = arn[strings.LastIndex(arn, "/")+1:]
	}
	sgs := append(p.list("SecurityGroupId"), p.list("SecurityGroup")...)
	digest := launchDigest(p)

	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	s.expire(now)
	var subnet *subnetState
	if id := p.get("SubnetId"); id != "" {
		subnet = s.subnets[id]
		if subnet == nil {
			return "", errorf(http.StatusBadRequest, "InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist", id)
		}
	} else {
		subnet = s.subnets[s.opts.Subnets[0].ID]
	}
	tokenKey := token + "/" + subnet.Zone
	if token != "" {
		if r, ok := s.tokens[tokenKey]; ok {
			if r.digest != digest {
				return "", errorf(http.StatusBadRequest, "IdempotentParameterMismatch", "Arguments on this idempotent request are inconsistent with arguments used in previous request(s).")
			}
			return s.reservationXML(r, now), nil
		}
	}
	ips := make([]string, 0, maxCount)
	next := subnet.next
	for range maxCount {
		if !subnet.prefix.Contains(next) || !subnet.prefix.Contains(next.Next()) {
			return "", errorf(http.StatusBadRequest, "InsufficientFreeAddressesInSubnet", "There are not enough free addresses in subnet '%s' to satisfy the requested number of instances.", subnet.ID)
		}
		ips = append(ips, next.String())
		next = next.Next()
	}
	subnet.next = next

	s.seq++
	r := &reservation{id: fmt.Sprintf("r-%017x", s.seq), digest: digest}
	for i := range maxCount {
		s.seq++
		in := &instance{
			seq: s.seq, id: fmt.Sprintf("i-%017x", s.seq), reservation: r,
			imageID: image, instanceType: instanceType, subnet: subnet, privateIP: ips[i],
			keyName: p.get("KeyName"), profile: profile, securityGroups: sgs,
			clientToken: token, launchIndex: i, tags: cloneTags(instanceTags),
			launchedAt: now, hiddenDescribes: s.describeLag,
		}
		r.instances = append(r.instances, in)
		s.instances[in.id] = in
		s.order = append(s.order, in)
		if s.opts.Booter != nil {
			in.booting = true
			s.boot(in, in.snapshot(now, s.opts), userData)
		}
	}
	s.reservations[r.id] = r
	if token != "" {
		s.tokens[tokenKey] = r
	}
	return s.reservationXMLState(r, now, StatePending), nil
}

func cloneTags(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// boot runs the Booter for one instance. Callers hold mu.
func (s *Server) boot(in *instance, snap Instance, userData []byte) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ip, err := s.opts.Booter.Boot(s.ctx, snap, userData)
		s.mu.Lock()
		in.booting = false
		terminated := !in.terminatedAt.IsZero()
		switch {
		case err != nil:
			s.log.Warn("ec2sim boot failed", "instance", in.id, "err", err)
			in.bootFailed = true
			if !terminated {
				in.terminatedAt = s.clock.Now()
			}
		case ip != "":
			in.privateIP = ip
		}
		stop := err == nil && terminated
		if stop {
			in.stopping = true
		}
		s.mu.Unlock()
		if stop {
			s.stop(in)
		}
	}()
}

// stop runs Booter.Stop for an instance whose stopping flag is set.
func (s *Server) stop(in *instance) {
	s.opts.Booter.Stop(in.id)
	s.mu.Lock()
	in.stopping = false
	s.mu.Unlock()
}

func (s *Server) reservationXML(r *reservation, now time.Time) string {
	return s.reservationXMLState(r, now, "")
}

// reservationXMLState writes a RunInstances result; state overrides each
// instance's derived state when set.
func (s *Server) reservationXMLState(r *reservation, now time.Time, state string) string {
	var w xw
	w.text("reservationId", r.id)
	w.text("ownerId", ownerID)
	w.WriteString("<groupSet/>")
	w.open("instancesSet")
	for _, in := range r.instances {
		st := state
		if st == "" {
			st = in.state(now, s.opts)
		}
		w.instance(in, st)
	}
	w.close("instancesSet")
	return w.String()
}

func (s *Server) terminateInstances(p params) (string, *APIError) {
	ids := p.list("InstanceId")
	if len(ids) == 0 {
		return "", errorf(http.StatusBadRequest, "InvalidParameterCombination", "No instances specified")
	}
	if len(ids) > 1000 {
		return "", errorf(http.StatusBadRequest, "InvalidParameterValue", "TerminateInstances accepts at most 1000 instance IDs per request, got %d", len(ids))
	}
	if apiErr := checkInstanceIDs(ids); apiErr != nil {
		return "", apiErr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	s.expire(now)
	var missing []string
	for _, id := range ids {
		if _, ok := s.instances[id]; !ok {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return "", notFound(missing)
	}
	var w xw
	w.open("instancesSet")
	for _, id := range ids {
		in := s.instances[id]
		prev := in.state(now, s.opts)
		if in.terminatedAt.IsZero() {
			in.terminatedAt = now
			if s.opts.Booter != nil && !in.booting && !in.bootFailed {
				in.stopping = true
				s.wg.Add(1)
				go func() {
					defer s.wg.Done()
					s.stop(in)
				}()
			}
		}
		w.open("item")
		w.text("instanceId", id)
		w.state("currentState", in.state(now, s.opts))
		w.state("previousState", prev)
		w.close("item")
	}
	w.close("instancesSet")
	return w.String(), nil
}

func (s *Server) createTags(p params) (string, *APIError) {
	ids := p.list("ResourceId")
	if len(ids) == 0 {
		return "", errorf(http.StatusBadRequest, "MissingParameter", "The request must contain the parameter ResourceId")
	}
	tags, apiErr := parseTags(p, "Tag")
	if apiErr != nil {
		return "", apiErr
	}
	for _, id := range ids {
		if !strings.HasPrefix(id, "i-") {
			return "", errorf(http.StatusBadRequest, "InvalidID", "The ID '%s' is not valid (this emulator tags instances only)", id)
		}
	}
	if apiErr := checkInstanceIDs(ids); apiErr != nil {
		return "", apiErr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(s.clock.Now())
	var missing []string
	for _, id := range ids {
		if _, ok := s.instances[id]; !ok {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return "", notFound(missing)
	}
	for _, id := range ids {
		in := s.instances[id]
		for k, v := range tags {
			in.tags[k] = v
		}
		if len(in.tags) > 50 {
			return "", errorf(http.StatusBadRequest, "TagLimitExceeded", "The maximum number of tags per resource is 50")
		}
	}
	return "<return>true</return>", nil
}
