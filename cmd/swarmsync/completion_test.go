package main

import (
	"bytes"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestCompletedValuesAreTheAcceptedOnes keeps flag completion true: for
// every flag whose values the shell completes, the command's own error for
// an unknown value lists exactly those values.
func TestCompletedValuesAreTheAcceptedOnes(t *testing.T) {
	use := regexp.MustCompile(`: use (.*)$`)
	for cmd, flags := range flagValues {
		for flag, values := range flags {
			t.Run(cmd+"/"+flag, func(t *testing.T) {
				var out, errb bytes.Buffer
				code := Main([]string{cmd, "--" + flag, "bogus"}, strings.NewReader(""), &out, &errb)
				if code != exitError {
					t.Fatalf("exit %d; want %d (stderr %q)", code, exitError, errb.String())
				}
				m := use.FindStringSubmatch(strings.TrimSpace(errb.String()))
				if m == nil {
					t.Fatalf("stderr %q does not say which values to use", errb.String())
				}
				accepted := strings.FieldsFunc(strings.ReplaceAll(m[1], " or ", ","), func(r rune) bool { return r == ',' || r == ' ' })
				if !slices.Equal(accepted, values) {
					t.Errorf("%s --%s accepts %q, completion offers %q", cmd, flag, accepted, values)
				}
			})
		}
	}
}
