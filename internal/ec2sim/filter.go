package ec2sim

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// filter is one DescribeInstances filter: Name with any of Values (OR).
type filter struct {
	name   string
	values []string
}

// filterFields maps supported filter names to the instance field they match.
var filterFields = map[string]func(in *instance, state string) []string{
	"instance-id":         func(in *instance, _ string) []string { return []string{in.id} },
	"instance-state-name": func(_ *instance, st string) []string { return []string{st} },
	"instance-state-code": func(_ *instance, st string) []string { return []string{strconv.Itoa(stateCodes[st])} },
	"subnet-id":           func(in *instance, _ string) []string { return []string{in.subnet.ID} },
	"availability-zone":   func(in *instance, _ string) []string { return []string{in.subnet.Zone} },
	"image-id":            func(in *instance, _ string) []string { return []string{in.imageID} },
	"instance-type":       func(in *instance, _ string) []string { return []string{in.instanceType} },
	"reservation-id":      func(in *instance, _ string) []string { return []string{in.reservation.id} },
	"client-token":        func(in *instance, _ string) []string { return []string{in.clientToken} },
	"private-ip-address":  func(in *instance, _ string) []string { return []string{in.privateIP} },
	"key-name":            func(in *instance, _ string) []string { return []string{in.keyName} },
	"tag-key": func(in *instance, _ string) []string {
		out := make([]string, 0, len(in.tags))
		for k := range in.tags {
			out = append(out, k)
		}
		return out
	},
	"tag-value": func(in *instance, _ string) []string {
		out := make([]string, 0, len(in.tags))
		for _, v := range in.tags {
			out = append(out, v)
		}
		return out
	},
}

// parseFilters reads Filter.N.Name / Filter.N.Value.M.
func parseFilters(p params) ([]filter, *APIError) {
	var out []filter
	for _, n := range p.indexes("Filter") {
		pre := "Filter." + strconv.Itoa(n)
		f := filter{name: p.get(pre + ".Name"), values: p.list(pre + ".Value")}
		if f.name == "" {
			return nil, errorf(http.StatusBadRequest, "InvalidParameterValue", "The filter name must not be empty (Filter.%d.Name).", n)
		}
		if _, ok := filterFields[f.name]; !ok && !strings.HasPrefix(f.name, "tag:") {
			return nil, errorf(http.StatusBadRequest, "InvalidParameterValue", "The filter '%s' is invalid", f.name)
		}
		if len(f.values) == 0 {
			return nil, errorf(http.StatusBadRequest, "InvalidParameterValue", "The filter '%s' has no values (Filter.%d.Value.1)", f.name, n)
		}
		out = append(out, f)
	}
	return out, nil
}

// matches applies every filter (AND across filters, OR within one).
func matches(in *instance, fs []filter, now time.Time, o Options) bool {
	state := in.state(now, o)
	for _, f := range fs {
		var fieldValues []string
		if key, ok := strings.CutPrefix(f.name, "tag:"); ok {
			v, has := in.tags[key]
			if !has {
				return false
			}
			fieldValues = []string{v}
		} else {
			fieldValues = filterFields[f.name](in, state)
		}
		if !anyMatch(f.values, fieldValues) {
			return false
		}
	}
	return true
}

func anyMatch(patterns, values []string) bool {
	for _, p := range patterns {
		for _, v := range values {
			if wildcard(p, v) {
				return true
			}
		}
	}
	return false
}

// wildcard matches s against pattern, where * is any run of characters and
// ? is one character (EC2 filter syntax).
func wildcard(pattern, s string) bool {
	if !strings.ContainsAny(pattern, "*?") {
		return pattern == s // most filter values: no allocation
	}
	p, t := []rune(pattern), []rune(s)
	pi, ti := 0, 0
	star, mark := -1, 0
	for ti < len(t) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == t[ti]):
			pi++
			ti++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, ti
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			ti = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
