package ec2sim

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// VPC is the one VPC of the emulated account; every subnet is in it.
const VPC = "vpc-0a00000000000000a"

// SecurityGroup is a snapshot of one emulated security group.
type SecurityGroup struct {
	ID, Name, Description, VPC string
	Tags                       map[string]string
	Ingress                    []Permission
}

// Permission is one inbound rule: protocol ("tcp", "udp", "-1"), port
// range and one source (a group id or a CIDR).
type Permission struct {
	Protocol         string
	FromPort, ToPort int
	SourceGroup      string
	CIDR             string
}

type securityGroup struct {
	SecurityGroup
	seq uint64
}

// SecurityGroups returns a snapshot of every security group, by id.
func (s *Server) SecurityGroups() []SecurityGroup {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []SecurityGroup
	for _, id := range slices.Sorted(maps.Keys(s.sgs)) {
		g := s.sgs[id].SecurityGroup
		g.Tags = maps.Clone(g.Tags)
		g.Ingress = slices.Clone(g.Ingress)
		out = append(out, g)
	}
	return out
}

// AddSecurityGroup creates a security group directly (test setup: the
// account's own groups) and returns its id: g.ID when set, else a new one.
func (s *Server) AddSecurityGroup(g SecurityGroup) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	sg := s.newSG(g.Name, "test setup", maps.Clone(g.Tags))
	if g.ID != "" {
		delete(s.sgs, sg.ID)
		sg.ID = g.ID
		s.sgs[sg.ID] = sg
	}
	sg.Ingress = slices.Clone(g.Ingress)
	return sg.ID
}

func (s *Server) newSG(name, desc string, tags map[string]string) *securityGroup {
	s.idSeq++
	g := &securityGroup{SecurityGroup: SecurityGroup{ID: fmt.Sprintf("sg-%017x", s.idSeq), Name: name, Description: desc, VPC: VPC, Tags: tags}, seq: s.idSeq}
	s.sgs[g.ID] = g
	return g
}

// sgFilters are the DescribeSecurityGroups filters the emulator supports.
var sgFilters = map[string]func(g *securityGroup) []string{
	"group-id":   func(g *securityGroup) []string { return []string{g.ID} },
	"group-name": func(g *securityGroup) []string { return []string{g.Name} },
	"vpc-id":     func(g *securityGroup) []string { return []string{g.VPC} },
}

func (s *Server) describeSecurityGroups(p params) (string, *APIError) {
	fs, apiErr := parseResourceFilters(p, sgFilters)
	if apiErr != nil {
		return "", apiErr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	groups, apiErr := selectResources(s.sgs, p.list("GroupId"),
		func(id string) *APIError {
			return errorf(http.StatusBadRequest, "InvalidGroup.NotFound", "The security group '%s' does not exist", id)
		},
		func(g *securityGroup) bool {
			return matchResource(fs, g.Tags, func(name string) []string { return sgFilters[name](g) })
		})
	if apiErr != nil {
		return "", apiErr
	}
	var w xw
	w.open("securityGroupInfo")
	for _, g := range groups {
		w.open("item")
		w.text("ownerId", ownerID)
		w.text("groupId", g.ID)
		w.text("groupName", g.Name)
		w.text("groupDescription", g.Description)
		w.text("vpcId", g.VPC)
		w.open("ipPermissions")
		for _, r := range g.Ingress {
			w.open("item")
			w.text("ipProtocol", r.Protocol)
			if r.Protocol != "-1" {
				w.int("fromPort", r.FromPort)
				w.int("toPort", r.ToPort)
			}
			if r.SourceGroup != "" {
				w.WriteString("<groups><item>")
				w.text("userId", ownerID)
				w.text("groupId", r.SourceGroup)
				w.WriteString("</item></groups><ipRanges/>")
			} else {
				w.WriteString("<groups/><ipRanges><item>")
				w.text("cidrIp", r.CIDR)
				w.WriteString("</item></ipRanges>")
			}
			w.close("item")
		}
		w.close("ipPermissions")
		w.WriteString("<ipPermissionsEgress/>")
		w.tagSet(g.Tags)
		w.close("item")
	}
	w.close("securityGroupInfo")
	return w.String(), nil
}

func (s *Server) createSecurityGroup(p params) (string, *APIError) {
	name, desc := p.get("GroupName"), p.get("GroupDescription")
	if name == "" || desc == "" {
		return "", errorf(http.StatusBadRequest, "MissingParameter", "The request must contain the parameters GroupName and GroupDescription")
	}
	if vpc := p.get("VpcId"); vpc != "" && vpc != VPC {
		return "", errorf(http.StatusBadRequest, "InvalidVpcID.NotFound", "The vpc ID '%s' does not exist", vpc)
	}
	tags := map[string]string{}
	for _, n := range p.indexes("TagSpecification") {
		pre := "TagSpecification." + strconv.Itoa(n)
		if rt := p.get(pre + ".ResourceType"); rt != "security-group" {
			return "", errorf(http.StatusBadRequest, "InvalidParameterValue", "'%s' is not a valid taggable resource type for this operation.", rt)
		}
		t, apiErr := parseTags(p, pre+".Tag")
		if apiErr != nil {
			return "", apiErr
		}
		maps.Copy(tags, t)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.sgs {
		if g.Name == name {
			return "", errorf(http.StatusBadRequest, "InvalidGroup.Duplicate", "The security group '%s' already exists for VPC '%s'", name, VPC)
		}
	}
	g := s.newSG(name, desc, tags)
	return "<return>true</return><groupId>" + g.ID + "</groupId>", nil
}

func (s *Server) deleteSecurityGroup(p params) (string, *APIError) {
	id := p.get("GroupId")
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sgs[id]; !ok {
		return "", errorf(http.StatusBadRequest, "InvalidGroup.NotFound", "The security group '%s' does not exist", id)
	}
	now := s.clock.Now()
	for _, in := range s.order {
		if in.state(now, s.opts) != StateTerminated && slices.Contains(in.securityGroups, id) {
			return "", errorf(http.StatusBadRequest, "DependencyViolation", "resource %s has a dependent object", id)
		}
	}
	for _, g := range s.sgs {
		for _, r := range g.Ingress {
			if r.SourceGroup == id && g.ID != id {
				return "", errorf(http.StatusBadRequest, "DependencyViolation", "resource %s has a dependent object", id)
			}
		}
	}
	delete(s.sgs, id)
	return "<return>true</return>", nil
}

func (s *Server) authorizeIngress(p params) (string, *APIError) {
	id := p.get("GroupId")
	var perms []Permission
	for _, n := range p.indexes("IpPermissions") {
		pre := "IpPermissions." + strconv.Itoa(n)
		proto := p.get(pre + ".IpProtocol")
		from, _ := strconv.Atoi(p.get(pre + ".FromPort"))
		to, _ := strconv.Atoi(p.get(pre + ".ToPort"))
		switch proto {
		case "tcp", "udp":
			if from < 0 || to > 65535 || from > to {
				return "", errorf(http.StatusBadRequest, "InvalidParameterValue", "Invalid port range %d-%d", from, to)
			}
		case "-1":
			from, to = 0, 65535
		default:
			return "", errorf(http.StatusBadRequest, "InvalidParameterValue", "Invalid value '%s' for IP protocol", proto)
		}
		for _, m := range p.indexes(pre + ".Groups") {
			perms = append(perms, Permission{Protocol: proto, FromPort: from, ToPort: to, SourceGroup: p.get(fmt.Sprintf("%s.Groups.%d.GroupId", pre, m))})
		}
		for _, m := range p.indexes(pre + ".IpRanges") {
			perms = append(perms, Permission{Protocol: proto, FromPort: from, ToPort: to, CIDR: p.get(fmt.Sprintf("%s.IpRanges.%d.CidrIp", pre, m))})
		}
	}
	if len(perms) == 0 {
		return "", errorf(http.StatusBadRequest, "MissingParameter", "The request must contain the parameter IpPermissions")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.sgs[id]
	if !ok {
		return "", errorf(http.StatusBadRequest, "InvalidGroup.NotFound", "The security group '%s' does not exist", id)
	}
	for _, r := range perms {
		if r.SourceGroup != "" {
			if _, ok := s.sgs[r.SourceGroup]; !ok {
				return "", errorf(http.StatusBadRequest, "InvalidGroup.NotFound", "The security group '%s' does not exist", r.SourceGroup)
			}
		}
		if slices.Contains(g.Ingress, r) {
			return "", errorf(http.StatusBadRequest, "InvalidPermission.Duplicate", "the specified rule \"peer: %s%s, %s, from port: %d, to port: %d, ALLOW\" already exists", r.SourceGroup, r.CIDR, strings.ToUpper(r.Protocol), r.FromPort, r.ToPort)
		}
	}
	g.Ingress = append(g.Ingress, perms...)
	return "<return>true</return>", nil
}

// subnetFilters are the DescribeSubnets filters the emulator supports.
var subnetFilters = map[string]func(sn *subnetState) []string{
	"subnet-id":         func(sn *subnetState) []string { return []string{sn.ID} },
	"availability-zone": func(sn *subnetState) []string { return []string{sn.Zone} },
	"vpc-id":            func(*subnetState) []string { return []string{VPC} },
}

func (s *Server) describeSubnets(p params) (string, *APIError) {
	fs, apiErr := parseResourceFilters(p, subnetFilters)
	if apiErr != nil {
		return "", apiErr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	subnets, apiErr := selectResources(s.subnets, p.list("SubnetId"),
		func(id string) *APIError {
			return errorf(http.StatusBadRequest, "InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist", id)
		},
		func(sn *subnetState) bool {
			return matchResource(fs, nil, func(name string) []string { return subnetFilters[name](sn) })
		})
	if apiErr != nil {
		return "", apiErr
	}
	var w xw
	w.open("subnetSet")
	for _, sn := range subnets {
		w.open("item")
		w.text("subnetId", sn.ID)
		w.text("state", "available")
		w.text("vpcId", VPC)
		w.text("cidrBlock", sn.CIDR)
		w.text("availabilityZone", sn.Zone)
		w.text("ownerId", ownerID)
		w.close("item")
	}
	w.close("subnetSet")
	return w.String(), nil
}

// selectResources is a Describe call's selection: every id named must
// exist (else notFound's error, as EC2 answers), and the result is the
// resources named (all when none is) that match, in id order.
func selectResources[T any](all map[string]T, ids []string, notFound func(id string) *APIError, match func(T) bool) ([]T, *APIError) {
	for _, id := range ids {
		if _, ok := all[id]; !ok {
			return nil, notFound(id)
		}
	}
	var out []T
	for _, id := range slices.Sorted(maps.Keys(all)) {
		if (len(ids) == 0 || slices.Contains(ids, id)) && match(all[id]) {
			out = append(out, all[id])
		}
	}
	return out, nil
}

// parseResourceFilters reads Filter.N for a resource kind whose supported
// filter names are the keys of fields (plus tag:K and tag-key).
func parseResourceFilters[T any](p params, fields map[string]func(T) []string) ([]filter, *APIError) {
	var out []filter
	for _, n := range p.indexes("Filter") {
		pre := "Filter." + strconv.Itoa(n)
		f := filter{name: p.get(pre + ".Name"), values: p.list(pre + ".Value")}
		if _, ok := fields[f.name]; !ok && !strings.HasPrefix(f.name, "tag:") && f.name != "tag-key" {
			return nil, errorf(http.StatusBadRequest, "InvalidParameterValue", "The filter '%s' is invalid", f.name)
		}
		if len(f.values) == 0 {
			return nil, errorf(http.StatusBadRequest, "InvalidParameterValue", "The filter '%s' has no values (Filter.%d.Value.1)", f.name, n)
		}
		out = append(out, f)
	}
	return out, nil
}

// matchResource applies filters (AND across, OR within) to a resource with
// tags, whose other fields field returns by filter name.
func matchResource(fs []filter, tags map[string]string, field func(name string) []string) bool {
	for _, f := range fs {
		var vals []string
		switch key, isTag := strings.CutPrefix(f.name, "tag:"); {
		case isTag:
			v, ok := tags[key]
			if !ok {
				return false
			}
			vals = []string{v}
		case f.name == "tag-key":
			vals = slices.Collect(maps.Keys(tags))
		default:
			vals = field(f.name)
		}
		if !anyMatch(f.values, vals) {
			return false
		}
	}
	return true
}
