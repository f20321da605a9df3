package lab

import (
	"strings"
	"testing"

	"github.com/swarmsync/swarmsync/apply"
)

// FastTemplate returns the default user-data template of a provider kind
// ("local", "aws") with a 1s dispatcher heartbeat added to its
// `docker swarm init`: a terminated machine's node is then Down in about
// 3s instead of 15s. Everything else is the product's template, unchanged.
func FastTemplate(tb testing.TB, kind string) string {
	tb.Helper()
	tmpl, err := apply.DefaultTemplate(kind)
	if err != nil {
		tb.Fatal(err)
	}
	fast := strings.Replace(tmpl, "docker swarm init --advertise-addr", "docker swarm init --dispatcher-heartbeat 1s --advertise-addr", 1)
	if fast == tmpl {
		tb.Fatalf("the default %s template no longer has a `docker swarm init --advertise-addr` line", kind)
	}
	return fast
}
