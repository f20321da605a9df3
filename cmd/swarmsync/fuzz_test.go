package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"

	"github.com/swarmsync/swarmsync/plan"
	"github.com/swarmsync/swarmsync/schema"
)

// printable says what in out a terminal would act on: a control character
// other than newline and tab, DEL, a C1 control, a bidi control or a byte
// that is not UTF-8.
func printable(out []byte) error {
	for i := 0; i < len(out); {
		r, n := utf8.DecodeRune(out[i:])
		if (r == utf8.RuneError && n == 1) || (r != '\n' && r != '\t' && mustEscape(r, n, false)) {
			return fmt.Errorf("byte %d: %q printed raw", i, out[i:i+n])
		}
		i += n
	}
	return nil
}

func seedFiles(f *testing.F, globs ...string) [][]byte {
	var out [][]byte
	for _, g := range globs {
		ps, err := filepath.Glob(g)
		if err != nil {
			f.Fatal(err)
		}
		for _, p := range ps {
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			out = append(out, b)
		}
	}
	if len(out) == 0 {
		f.Fatalf("no seeds in %v", globs)
	}
	return out
}

// FuzzPlanViews decodes arbitrary bytes as a plan file and renders every
// text view of what decodes: no panic, and nothing a terminal acts on is
// printed. Seeds: every fixture's expected plan and testdata/hostile.
func FuzzPlanViews(f *testing.F) {
	for _, b := range seedFiles(f, "../../fixtures/plans/*/expected.json", "testdata/hostile/*.plan.json") {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, js []byte) {
		if _, err := plan.UnmarshalPlan(js); err != nil {
			return
		}
		for name, render := range map[string]func(w *safeWriter, js []byte) error{
			"text":     func(w *safeWriter, js []byte) error { return renderPlanText(w, js) },
			"markdown": func(w *safeWriter, js []byte) error { return renderPlanMarkdown(w, js) },
			"dot":      func(w *safeWriter, js []byte) error { return renderPlanDot(w, js) },
		} {
			var buf bytes.Buffer
			if err := render(newSafeWriter(&buf), js); err != nil {
				renderError(newSafeWriter(&buf), err)
			}
			if err := printable(buf.Bytes()); err != nil {
				t.Fatalf("%s view: %v\n%s", name, err, buf.Bytes())
			}
		}
	})
}

// FuzzSpecViews loads arbitrary bytes as a spec file, then prints what a
// user sees: the diagnostics, or the validate summary and the plan of each
// cluster against an empty cloud. Nothing a terminal acts on is printed.
func FuzzSpecViews(f *testing.F) {
	for _, b := range seedFiles(f, "../../fixtures/*/*.yaml", "../../fixtures/invalid/*/*.yaml", "testdata/hostile/*.yaml") {
		f.Add(b, false)
	}
	for _, b := range seedFiles(f, "../../fixtures/*/*.cue", "testdata/hostile/*.cue") {
		f.Add(b, true)
	}
	f.Fuzz(func(t *testing.T, data []byte, isCUE bool) {
		name := "spec.yaml"
		if isCUE {
			name = "spec.cue"
		}
		var buf bytes.Buffer
		w := newSafeWriter(&buf)
		res, err := schema.Load([]schema.File{{Name: name, Data: data}})
		if err != nil {
			var ds schema.Diagnostics
			if errors.As(err, &ds) {
				renderDiagnostics(w, ds)
			} else {
				renderError(w, err)
			}
		} else {
			co := &checkout{Repo: "fuzz\x1b", Commit: "c0ffee"}
			if err := newValidateView(co, res, res.Clusters).renderText(w); err != nil {
				t.Fatal(err)
			}
			for _, c := range res.Clusters {
				p, err := plan.Compute(c, plan.Observed{Cluster: c.Name}, plan.Source{Repo: "fuzz", SpecDigest: res.Digest})
				if err != nil {
					renderError(w, err)
					continue
				}
				js, err := plan.MarshalPlan(p)
				if err != nil {
					t.Fatal(err)
				}
				if err := renderPlanText(w, js); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := printable(buf.Bytes()); err != nil {
			t.Fatalf("%v\n%s", err, buf.Bytes())
		}
	})
}
