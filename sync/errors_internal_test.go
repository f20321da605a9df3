package sync

import (
	"errors"
	"strings"
	"testing"
)

// A server's error text is quoted at most maxDetail bytes, cut on a rune
// boundary, saying how much was left out.
func TestClassifyBoundsServerText(t *testing.T) {
	long := "remote: " + strings.Repeat("é", 2000) + " connection refused"
	e := classify(errors.New(long), "https://git.example.test/x.git", scrubber{})
	if e == nil {
		t.Fatal("not classified")
	}
	if len(e.Error()) > maxDetail+200 || !strings.Contains(e.Error(), "... (3515 more bytes); check the URL") {
		t.Errorf("error not bounded: %d bytes: ...%s", len(e.Error()), e.Error()[len(e.Error())-150:])
	}
	if got := bound("short"); got != "short" {
		t.Errorf("bound(short) = %q", got)
	}
}
