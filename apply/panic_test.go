package apply

import (
	"context"
	"strings"
	"testing"

	"github.com/swarmsync/swarmsync/providers"
)

// panickyCloud panics on Launch, as a provider bug would.
type panickyCloud struct{ *fakeCloud }

func (panickyCloud) Launch(context.Context, providers.LaunchRequest) ([]providers.Instance, error) {
	panic("nil map in a provider")
}

// A panic on a step's goroutine fails that step; the process does not die
// (which would exit 2, the code for "changes").
func TestRunRecoversStepPanic(t *testing.T) {
	w := newWorld()
	d := w.deps()
	d.Cloud = panickyCloud{w.cloud}
	res, err := Run(context.Background(), bootstrapPlan(), d)
	if err == nil || !strings.Contains(err.Error(), "internal error in step") || !strings.Contains(err.Error(), "nil map in a provider") {
		t.Fatalf("err = %v, want the step's internal error", err)
	}
	if res == nil || len(res.IDs(StatusFailed)) != 1 {
		t.Fatalf("result = %+v, want one failed step", res)
	}
}
