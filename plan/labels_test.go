package plan

import (
	"maps"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/schema"
)

func TestManagedEncoding(t *testing.T) {
	for _, tc := range []struct {
		name string
		keys []string
		want string
	}{
		{"none", nil, ""},
		{"plain keys", []string{"tier", "zone"}, "tier,zone"},
		{"a comma and a percent in keys", []string{"a,b", "c%2Cd"}, "a%2Cb,c%252Cd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := encodeManaged(tc.keys)
			if got != tc.want {
				t.Errorf("encode = %q, want %q", got, tc.want)
			}
			if d := cmp.Diff(tc.keys, decodeManaged(got)); d != "" {
				t.Errorf("round trip (-want +got):\n%s", d)
			}
		})
	}
	if d := cmp.Diff([]string{"a", "b"}, decodeManaged("a,,b,")); d != "" {
		t.Errorf("empty parts (-want +got):\n%s", d)
	}
}

// TestLabelRemoval: a label step removes the spec labels swarmsync wrote
// earlier that the spec dropped, and only those.
func TestLabelRemoval(t *testing.T) {
	webNode := func(o Observed) *providers.Node {
		for i := range o.Swarm.Nodes {
			if o.Swarm.Nodes[i].Labels[providers.NodeLabelGroup] == "workers/web" {
				return &o.Swarm.Nodes[i]
			}
		}
		t.Fatal("no web node")
		return nil
	}
	for _, tc := range []struct {
		name      string
		specWeb   map[string]string // the web group's labels in the spec
		node      map[string]string // the first web node's labels, group label aside
		wantSteps int               // label steps (one per node that drifted)
		want      map[string]string // the first web node's step labels
	}{
		{
			name:    "steady: the managed list matches",
			specWeb: map[string]string{"tier": "web"},
			node:    map[string]string{"tier": "web", NodeLabelManaged: "tier", "owner": "ops"},
		},
		{
			name:      "a dropped key is removed, an unmanaged one stays",
			specWeb:   map[string]string{"tier": "web"},
			node:      map[string]string{"tier": "web", "zone": "a", NodeLabelManaged: "tier,zone", "owner": "ops"},
			wantSteps: 1,
			want:      map[string]string{"tier": "web", "zone": "", NodeLabelManaged: "tier", providers.NodeLabelGroup: "workers/web"},
		},
		{
			name:      "every label dropped: the list goes too",
			specWeb:   nil,
			node:      map[string]string{"tier": "web", NodeLabelManaged: "tier", "owner": "ops"},
			wantSteps: 1,
			want:      map[string]string{"tier": "", NodeLabelManaged: "", providers.NodeLabelGroup: "workers/web"},
		},
		{
			name:      "a node labelled before the list existed: the list is written, nothing removed",
			specWeb:   map[string]string{"tier": "web"},
			node:      map[string]string{"tier": "web", "zone": "a"},
			wantSteps: 1,
			want:      map[string]string{"tier": "web", NodeLabelManaged: "tier", providers.NodeLabelGroup: "workers/web"},
		},
		{
			name:      "a dropped key removed by hand already: only the list changes",
			specWeb:   map[string]string{"tier": "web"},
			node:      map[string]string{"tier": "web", NodeLabelManaged: "tier,zone"},
			wantSteps: 1,
			want:      map[string]string{"tier": "web", NodeLabelManaged: "tier", providers.NodeLabelGroup: "workers/web"},
		},
		{
			name:      "a key with a comma",
			specWeb:   map[string]string{"tier": "web"},
			node:      map[string]string{"tier": "web", "a,b": "1", "a": "1", "b": "1", NodeLabelManaged: "a%2Cb,tier"},
			wantSteps: 1,
			want:      map[string]string{"tier": "web", "a,b": "", NodeLabelManaged: "tier", providers.NodeLabelGroup: "workers/web"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := baseSpec()
			spec.Workers = map[string]schema.WorkerGroup{"web": {Count: 2, Availability: "active", Instance: spec.Workers["web"].Instance, Labels: tc.specWeb}}
			o := steady(spec)
			n := webNode(o)
			n.Labels = maps.Clone(tc.node)
			n.Labels[providers.NodeLabelGroup] = "workers/web"
			p, err := Compute(spec, o, Source{})
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Summary[ActionLabel]; got != tc.wantSteps || len(p.Steps) != tc.wantSteps {
				t.Fatalf("%d steps, %d label steps, want %d: %v", len(p.Steps), got, tc.wantSteps, view(p))
			}
			if tc.wantSteps == 0 {
				return
			}
			s := p.Steps[0]
			if s.Node != n.ID {
				t.Fatalf("label step targets %s, want %s", s.Node, n.ID)
			}
			if d := cmp.Diff(tc.want, s.Labels); d != "" {
				t.Errorf("step labels (-want +got):\n%s", d)
			}
		})
	}
}
