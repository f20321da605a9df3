package schema

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to the loader as a YAML or a CUE file. The
// seed corpus is every spec file under fixtures/, so `go test` runs it.
// Load must never panic, and what it returns must hold together: either
// diagnostics that each name a file, or valid clusters.
func FuzzLoad(f *testing.F) {
	seeds, err := filepath.Glob("../fixtures/*/*.*")
	if err != nil {
		f.Fatal(err)
	}
	more, _ := filepath.Glob("../fixtures/invalid/*/*.*")
	for _, p := range append(seeds, more...) {
		if !IsSpecFile(filepath.Base(p)) {
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, filepath.Ext(p) == ".cue")
	}
	f.Fuzz(func(t *testing.T, data []byte, isCUE bool) {
		name := "spec.yaml"
		if isCUE {
			name = "spec.cue"
		}
		res, err := Load([]File{{Name: name, Data: data}})
		if err != nil {
			var ds Diagnostics
			if errors.As(err, &ds) {
				if len(ds) == 0 {
					t.Fatal("empty Diagnostics returned as an error")
				}
				for _, d := range ds {
					if d.Pos.File != name || d.Summary == "" {
						t.Fatalf("diagnostic without file or summary: %#v", d)
					}
				}
			}
			return
		}
		if len(res.Clusters) == 0 {
			t.Fatal("Load succeeded without clusters")
		}
		for _, c := range res.Clusters {
			if !dnsLabel.MatchString(c.Name) {
				t.Fatalf("cluster name %q is not a DNS label", c.Name)
			}
			if !slices.Contains([]int{1, 3, 5, 7}, c.Managers.Count) {
				t.Fatalf("cluster %s: manager count %d", c.Name, c.Managers.Count)
			}
			if k := c.Provider.Kind(); k == "" || c.Provider.AWS != nil && c.Provider.Local != nil {
				t.Fatalf("cluster %s: provider %+v", c.Name, c.Provider)
			}
			if c.Safety.MaxRemovalsPerApply < 1 || c.Update.Parallelism < 1 {
				t.Fatalf("cluster %s: safety %+v update %+v", c.Name, c.Safety, c.Update)
			}
			if _, err := ParseCron(c.Schedule.Reconcile); err != nil {
				t.Fatalf("cluster %s: %v", c.Name, err)
			}
			for g, w := range c.Workers {
				if w.Count < 0 || !dnsLabel.MatchString(g) {
					t.Fatalf("cluster %s: worker group %q count %d", c.Name, g, w.Count)
				}
			}
		}
	})
}
