package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/swarmsync/swarmsync/providers"
)

// assertNoToken fails when the swarm's current join tokens, or anything
// shaped like a join token, appear in any of the outputs.
func assertNoToken(t testing.TB, sw providers.Swarm, outputs ...any) {
	t.Helper()
	var secrets []string
	if tok, err := sw.JoinTokens(context.Background()); err == nil {
		secrets = append(secrets, tok.Worker, tok.Manager)
	}
	for _, o := range outputs {
		s := fmt.Sprintf("%+v", o)
		if strings.Contains(s, "SWMTKN-") {
			t.Errorf("a join token appears in output: %.200s", s)
		}
		for _, sec := range secrets {
			if sec != "" && strings.Contains(s, sec) {
				t.Errorf("the current join token appears in output")
			}
		}
	}
}
