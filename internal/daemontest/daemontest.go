package daemontest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmsync/swarmsync/apply"
	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/providers/docker"
)

// maxBody bounds what is read of a daemon's answer.
const maxBody = 4 << 20

// Status reads the daemon's /status at addr (host:port).
func Status(addr string) (apply.LoopStatus, error) {
	var st apply.LoopStatus
	resp, err := (&http.Client{Timeout: 3 * time.Second}).Get("http://" + addr + "/status")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET /status: %s", resp.Status)
	}
	return st, json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(&st)
}

// Metrics returns the daemon's /metrics at addr, failing t when it does
// not answer.
func Metrics(t testing.TB, addr string) string {
	t.Helper()
	resp, err := (&http.Client{Timeout: 3 * time.Second}).Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Lines returns the lines of s that contain sub.
func Lines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// PostWebhook POSTs body to the daemon's /webhook at addr with the header
// pairs kv and returns the status code.
func PostWebhook(t testing.TB, addr string, body []byte, kv ...string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/webhook", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Set(kv[i], kv[i+1])
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("POST /webhook to %s: %v", addr, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Manager is one running manager's Docker endpoint.
type Manager struct {
	ID, Endpoint string
}

// StartQuorumWatch samples the Swarm every 300 ms through the managers
// that managers lists at that moment, asking one after another until one
// answers (each for up to 2 s). A sample is bad when the manager that
// answers sees fewer reachable managers than the raft membership's quorum,
// and leaderless when none answers (the Swarm API waits for a leader during
// an election). stop ends the watch (also at cleanup) and returns the
// samples, the leaderless count and the bad ones.
func StartQuorumWatch(t testing.TB, managers func(ctx context.Context) []Manager) (stop func() (samples, leaderless int, bad []string)) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var nSamples, nLeaderless int
	var bads []string
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			var reasons []string
			good, answered := false, false
			for _, m := range managers(ctx) {
				if good {
					break
				}
				ok, reason, err := sample(ctx, m.Endpoint)
				if err != nil {
					reasons = append(reasons, m.ID+": "+err.Error())
					continue
				}
				answered, good = true, ok
				if !ok {
					reasons = append(reasons, m.ID+": "+reason)
				}
			}
			if ctx.Err() != nil {
				return
			}
			nSamples++
			if !answered {
				nLeaderless++
			} else if !good {
				bads = append(bads, time.Now().Format("15:04:05.000")+" "+strings.Join(reasons, "; "))
			}
			select {
			case <-ctx.Done():
			case <-time.After(300 * time.Millisecond):
			}
		}
	}()
	var once sync.Once
	stop = func() (int, int, []string) {
		once.Do(func() {
			cancel()
			<-done
		})
		return nSamples, nLeaderless, bads
	}
	t.Cleanup(func() { stop() })
	return stop
}

// sample asks the engine at endpoint how many managers are reachable.
func sample(ctx context.Context, endpoint string) (ok bool, reason string, err error) {
	sw, err := docker.New(endpoint)
	if err != nil {
		return false, "", err
	}
	defer sw.Close()
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	obs, err := sw.Observe(sctx)
	if err != nil {
		return false, "", err
	}
	members, reachable := 0, 0
	for _, n := range obs.Nodes {
		if n.Role == providers.RoleManager {
			members++
			if n.Reachability == providers.Reachable {
				reachable++
			}
		}
	}
	if reachable >= members/2+1 {
		return true, "", nil
	}
	return false, fmt.Sprintf("%d of %d managers reachable", reachable, members), nil
}
