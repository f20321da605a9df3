package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/swarmsync/swarmsync/plan"
	"github.com/swarmsync/swarmsync/schema"
)

var update = flag.Bool("update", false, "rewrite the golden expected.json and expected.txt of fixtures/plans")

const planFixtures = "../../fixtures/plans"

// goldenPlan computes the plan of one fixture case (spec + observation) and
// renders it as JSON and text. A refused plan renders its error.
func goldenPlan(t *testing.T, dir string) (js, text []byte) {
	t.Helper()
	res, err := schema.LoadDir(dir)
	if err != nil {
		t.Fatalf("load spec: %v", err)
	}
	if len(res.Clusters) != 1 {
		t.Fatalf("want one cluster in %s, got %d", dir, len(res.Clusters))
	}
	b, err := os.ReadFile(filepath.Join(dir, "observed.json"))
	if err != nil {
		t.Fatal(err)
	}
	obs, err := plan.UnmarshalObserved(b)
	if err != nil {
		t.Fatal(err)
	}
	src := plan.Source{Repo: "fixtures/plans/" + filepath.Base(dir), Commit: "0123456789abcdef0123456789abcdef01234567", SpecDigest: res.Digest}
	p, err := plan.Compute(res.Clusters[0], obs, src)
	var re *plan.RefusedError
	if errors.As(err, &re) {
		js, _ := json.MarshalIndent(map[string]string{"error": re.Error(), "limit": re.Limit, "field": re.Field}, "", "  ")
		return append(js, '\n'), []byte("Error: " + re.Error() + "\n")
	}
	if err != nil {
		t.Fatalf("Compute: %v", err)
	}
	js, err = plan.MarshalPlan(p)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := renderPlanText(&buf, js); err != nil {
		t.Fatal(err)
	}
	return js, buf.Bytes()
}

// TestPlanFixtures checks every case of fixtures/plans against its golden
// expected.json and expected.txt (go test -run TestPlanFixtures -update
// rewrites them).
func TestPlanFixtures(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join(planFixtures, "*", "observed.json"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no fixtures found under %s (%v)", planFixtures, err)
	}
	for _, f := range dirs {
		dir := filepath.Dir(f)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			js, text := goldenPlan(t, dir)
			for name, got := range map[string][]byte{"expected.json": js, "expected.txt": text} {
				path := filepath.Join(dir, name)
				if *update {
					if err := os.WriteFile(path, got, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run with -update to create it)", err)
				}
				if d := cmp.Diff(string(want), string(got)); d != "" {
					t.Errorf("%s differs (-want +got):\n%s", name, d)
				}
			}
			// The same inputs give byte-identical JSON.
			js2, _ := goldenPlan(t, dir)
			if !bytes.Equal(js, js2) {
				t.Errorf("two computations of the same plan differ")
			}
		})
	}
}

// TestPlanMarkdown checks the pull-request rendering: summary first, steps
// collapsed, and a huge plan cut below the comment limit with a notice.
func TestPlanMarkdown(t *testing.T) {
	js, _ := goldenPlan(t, filepath.Join(planFixtures, "workers-scale-down"))
	var buf bytes.Buffer
	if err := renderPlanMarkdown(&buf, js); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"### swarmsync plan for `prod`", "**Plan: ", "```mermaid\nflowchart TD\n", "  s1 --> s2\n", "<details><summary>", "</details>", "| 1 |"} {
		if !strings.Contains(out, want) {
			t.Errorf("markdown lacks %q:\n%s", want, out)
		}
	}
	if strings.Index(out, "**Plan: ") > strings.Index(out, "<details>") {
		t.Errorf("summary must come before the details")
	}

	p, err := plan.UnmarshalPlan(js)
	if err != nil {
		t.Fatal(err)
	}
	big := *p
	big.Notes = []string{"a note that must survive the cut"}
	big.Steps = nil
	for i := range 5000 {
		s := p.Steps[0]
		s.ID = fmt.Sprintf("%s-%d", s.ID, i)
		s.Reason = strings.Repeat("a long reason ", 5)
		big.Steps = append(big.Steps, s)
	}
	bjs, err := plan.MarshalPlan(&big)
	if err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	if err := renderPlanMarkdown(&buf, bjs); err != nil {
		t.Fatal(err)
	}
	if n := len([]rune(buf.String())); n > markdownLimit {
		t.Errorf("markdown of a 5000-step plan has %d characters, limit %d", n, markdownLimit)
	}
	if !strings.Contains(buf.String(), "steps not shown") || !strings.HasSuffix(buf.String(), "</details>\n") {
		t.Errorf("a cut markdown plan must say what was cut and stay well-formed; tail: %q", buf.String()[buf.Len()-300:])
	}
	for _, want := range []string{"**Plan: 5000 to drain.**", "- a note that must survive the cut", "too many to draw here: `swarmsync plan --format dot`"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("a cut markdown plan lacks %q", want)
		}
	}
}
