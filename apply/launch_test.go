package apply

import (
	"context"
	"testing"

	"github.com/swarmsync/swarmsync/providers"
)

// TestLaunchLiveStepsOverDeadLaunches: a token whose instances have all
// terminated (an earlier bootstrap of the same empty cluster, destroyed
// since) leads to the next token of the sequence; a token whose launch is
// alive (a re-run after a crash) is reused, so nothing launches twice.
func TestLaunchLiveStepsOverDeadLaunches(t *testing.T) {
	ctx := context.Background()
	req := providers.LaunchRequest{Cluster: "c", Group: "managers", Count: 1, IdempotencyToken: "tok"}
	c := newFakeCloud(newFakeSwarm())
	c.byToken["tok"] = []providers.Instance{{ID: "i-dead", State: providers.StateTerminated}}
	c.byToken["tok-2"] = []providers.Instance{{ID: "i-gone", State: providers.StateShuttingDown}}

	got, err := launchLive(ctx, c, req)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID == "i-dead" || got[0].ID == "i-gone" {
		t.Fatalf("launchLive = %+v, want one new instance", got)
	}
	if last := c.launches[len(c.launches)-1].IdempotencyToken; last != "tok-3" {
		t.Errorf("new launch used token %q, want tok-3", last)
	}

	// A re-run walks the same sequence and gets the same live instance.
	again, err := launchLive(ctx, c, req)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 1 || again[0].ID != got[0].ID {
		t.Errorf("re-run got %+v, want the instance launched before (%s)", again, got[0].ID)
	}
	if n := len(c.byToken); n != 3 {
		t.Errorf("%d tokens used, want 3 (no second launch)", n)
	}
}
