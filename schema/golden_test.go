package schema

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the expected.txt goldens of fixtures/invalid")

const invalidDir = "../fixtures/invalid"

// renderLoadError is what a golden holds: the diagnostics one per line, or
// the error text with the directory replaced by DIR.
func renderLoadError(dir string, err error) string {
	var ds Diagnostics
	if errors.As(err, &ds) {
		return ds.Error() + "\n"
	}
	return strings.ReplaceAll(err.Error(), dir, "DIR") + "\n"
}

// TestInvalidFixtures loads every fixtures/invalid/<case> and compares the
// diagnostics with <case>/expected.txt (go test ./schema -run Invalid -update
// rewrites them).
func TestInvalidFixtures(t *testing.T) {
	cases, err := os.ReadDir(invalidDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) < 10 {
		t.Fatalf("only %d invalid fixtures found", len(cases))
	}
	for _, c := range cases {
		if !c.IsDir() {
			continue
		}
		t.Run(c.Name(), func(t *testing.T) {
			dir := filepath.Join(invalidDir, c.Name())
			res, err := LoadDir(dir)
			if err == nil {
				t.Fatalf("LoadDir(%s) succeeded with %d clusters; want an error", dir, len(res.Clusters))
			}
			got := renderLoadError(dir, err)
			golden := filepath.Join(dir, "expected.txt")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("diagnostics differ from %s (-want +got):\n%s", golden, diff)
			}
		})
	}
}
