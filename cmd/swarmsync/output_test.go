package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/cobra"
)

func TestEscape(t *testing.T) {
	cases := []struct {
		name, in, text, field string
	}{
		{"plain", "web-1 i-0abc", "web-1 i-0abc", "web-1 i-0abc"},
		{"unicode kept", "zürich ✓", "zürich ✓", "zürich ✓"},
		{"esc", "a\x1b[31mred", `a\x1b[31mred`, `a\x1b[31mred`},
		{"cr", "ok\rforged", `ok\rforged`, `ok\rforged`},
		{"lf and tab", "a\nb\tc", "a\nb\tc", `a\nb\tc`},
		{"nul bel del", "\x00\a\x7f", `\x00\a\x7f`, `\x00\a\x7f`},
		{"c1 csi", "a\u009b31m", `a\u009b31m`, `a\u009b31m`},
		{"bidi override", "abc\u202edef", `abc\u202edef`, `abc\u202edef`},
		{"invalid utf-8", "a\xffb\x9b", `a\xffb\x9b`, `a\xffb\x9b`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := escape(c.in, false); got != c.text {
				t.Errorf("escape(%q) = %q, want %q", c.in, got, c.text)
			}
			if got := escapeField(c.in); got != c.field {
				t.Errorf("escapeField(%q) = %q, want %q", c.in, got, c.field)
			}
			if got := escapeField(escapeField(c.in)); got != c.field {
				t.Errorf("escapeField is not idempotent on %q: %q", c.in, got)
			}
		})
	}
}

// A rune split across writes is written whole; a control character split
// from nothing is escaped.
func TestSafeWriterSplitRunes(t *testing.T) {
	var b bytes.Buffer
	w := newSafeWriter(&b)
	in := []byte("é\u0085✓\x1bz")
	for i := range in {
		if n, err := w.Write(in[i : i+1]); n != 1 || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if got, want := b.String(), `é\u0085✓\x1bz`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestEscapeFields(t *testing.T) {
	type inner struct {
		Labels map[string]string
		IDs    []string
	}
	type outer struct {
		Name  string
		In    *inner
		Count int
		priv  string
	}
	v := outer{Name: "a\nb", In: &inner{Labels: map[string]string{"k\x1b": "v\r"}, IDs: []string{"i-\t1"}}, Count: 3, priv: "\n"}
	escapeFields(&v)
	want := outer{Name: `a\nb`, In: &inner{Labels: map[string]string{`k\x1b`: `v\r`}, IDs: []string{`i-\t1`}}, Count: 3, priv: "\n"}
	if d := cmp.Diff(want, v, cmp.AllowUnexported(outer{})); d != "" {
		t.Errorf("escapeFields (-want +got):\n%s", d)
	}
}

// The error printer escapes an error's text and keeps joined errors one per
// line.
func TestRenderError(t *testing.T) {
	var b bytes.Buffer
	renderError(&b, fmt.Errorf("failed to pull: %w", errors.New("server said \x1b]0;owned\a\nfatal: forged")))
	renderError(&b, errors.Join(errors.New("--image: empty"), errors.New("--subnets: empty")))
	want := "Error: failed to pull: server said \\x1b]0;owned\\a\\nfatal: forged\n" +
		"Error: --image: empty\n--subnets: empty\n"
	if d := cmp.Diff(want, b.String()); d != "" {
		t.Errorf("renderError (-want +got):\n%s", d)
	}
}

// A panic in a command exits 1 (never 2, which means "changes") and says it
// is a bug, escaped.
func TestMainRecoversPanic(t *testing.T) {
	saved := commandFactories
	t.Cleanup(func() { commandFactories = saved })
	register(func(*app) *cobra.Command {
		return &cobra.Command{Use: "boom", RunE: func(*cobra.Command, []string) error {
			panic("boom\x1b[2J")
		}}
	})
	var out, errOut bytes.Buffer
	code := Main([]string{"boom"}, strings.NewReader(""), &out, &errOut)
	if code != exitError {
		t.Errorf("exit code %d, want %d", code, exitError)
	}
	if !strings.Contains(errOut.String(), `Error: internal error (a bug in swarmsync, please report it): boom\x1b[2J`) {
		t.Errorf("stderr does not name the panic:\n%s", errOut.String())
	}
	if strings.Contains(errOut.String(), "\x1b") {
		t.Errorf("stderr holds a raw ESC")
	}
}

// An interrupt while CUE specs evaluate stops the evaluation at once.
func TestEvaluateWithinBudgetInterrupted(t *testing.T) {
	dir := t.TempDir()
	spec := "package specs\nimport \"list\"\nclusters: prod: {provider: local: {}, managers: count: 1}\nbomb: [for i in list.Range(0, 100000000, 1) {\"item-\\(i)\"}]\n"
	if err := os.WriteFile(filepath.Join(dir, "c.cue"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(envSpecMemory, "100000")
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-time.After(300 * time.Millisecond); cancel() }()
	err := evaluateWithinBudget(ctx, dir)
	if err == nil || !strings.Contains(err.Error(), "interrupted while evaluating the CUE specs; nothing was changed") {
		t.Fatalf("err = %v, want an interruption", err)
	}
}
