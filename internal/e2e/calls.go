package e2e

import (
	"context"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/swarmsync/swarmsync/apply"
	"github.com/swarmsync/swarmsync/plan"
	"github.com/swarmsync/swarmsync/providers"
)

// Calls counts the API calls a pass makes: Docker Engine API requests (by
// method and path, ids and the API version taken out) and cloud calls (by
// method), each under the phase running when it was made ("find-leader",
// "observe", or the action of the step running). Steps run one at a time
// when update.parallelism is 1, so every call is the step's own.
type Calls struct {
	mu    sync.Mutex
	phase string
	n     map[string]map[string]int // phase -> call -> count
	steps map[string]int            // action -> steps finished
	wall  map[string]time.Duration  // action -> elapsed, summed
}

// NewCalls returns an empty counter in phase "idle".
func NewCalls() *Calls {
	c := &Calls{}
	c.Reset()
	return c
}

// Reset forgets every count.
func (c *Calls) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.phase = "idle"
	c.n = map[string]map[string]int{}
	c.steps = map[string]int{}
	c.wall = map[string]time.Duration{}
}

// SetPhase attributes the following calls to phase.
func (c *Calls) SetPhase(phase string) {
	c.mu.Lock()
	c.phase = phase
	c.mu.Unlock()
}

func (c *Calls) add(call string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.n[c.phase]
	if m == nil {
		m = map[string]int{}
		c.n[c.phase] = m
	}
	m[call]++
}

// CallCounts are counts of calls by phase, then by call.
type CallCounts map[string]map[string]int

// Counts returns a copy of the counts.
func (c *Calls) Counts() CallCounts {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := CallCounts{}
	for p, m := range c.n {
		out[p] = map[string]int{}
		for k, v := range m {
			out[p][k] = v
		}
	}
	return out
}

// Steps returns how many steps of each action finished and their summed
// wall time.
func (c *Calls) Steps() (map[string]int, map[string]time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, w := map[string]int{}, map[string]time.Duration{}
	for k, v := range c.steps {
		n[k] = v
	}
	for k, v := range c.wall {
		w[k] = v
	}
	return n, w
}

// Total is the number of calls of a phase whose name starts with prefix
// ("docker ", "cloud ", or "" for all).
func (cc CallCounts) Total(phase, prefix string) int {
	n := 0
	for k, v := range cc[phase] {
		if strings.HasPrefix(k, prefix) {
			n += v
		}
	}
	return n
}

// Lists is the number of listings in a phase: node and task listings on
// the Swarm, instance listings on the cloud. A wait polls by listing once.
func (cc CallCounts) Lists(phase string) int {
	return cc[phase]["docker GET /nodes"] + cc[phase]["docker GET /tasks"] + cc[phase]["cloud Instances"]
}

// Phases returns the phases in name order.
func (cc CallCounts) Phases() []string {
	var out []string
	for p := range cc {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

var (
	apiVersion = regexp.MustCompile(`^/v[0-9.]+/`)
	// Collections whose second path segment is an object id.
	withID = map[string]bool{"nodes": true, "services": true, "tasks": true, "containers": true, "images": true, "networks": true}
)

// dockerCall names a Docker API request: "docker GET /nodes/{id}".
func dockerCall(r *http.Request) string {
	p := apiVersion.ReplaceAllString(r.URL.Path, "/")
	seg := strings.Split(strings.Trim(p, "/"), "/")
	if len(seg) > 1 && withID[seg[0]] {
		seg[1] = "{id}"
	}
	return "docker " + r.Method + " /" + strings.Join(seg, "/")
}

// RoundTripper wraps a Docker client's transport to count its requests
// (docker.WithRoundTripper).
func (c *Calls) RoundTripper(next http.RoundTripper) http.RoundTripper {
	return countingTransport{c: c, next: next}
}

type countingTransport struct {
	c    *Calls
	next http.RoundTripper
}

func (t countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.c.add(dockerCall(r))
	return t.next.RoundTrip(r)
}

// Cloud wraps a cloud to count its calls. Launch counts once per call
// (whatever the number of instances); "instances launched" and "instances
// terminated" count the instances asked for.
func (c *Calls) Cloud(next providers.Cloud) providers.Cloud { return countingCloud{c: c, next: next} }

type countingCloud struct {
	c    *Calls
	next providers.Cloud
}

func (cc countingCloud) Instances(ctx context.Context, cluster string) ([]providers.Instance, error) {
	cc.c.add("cloud Instances")
	return cc.next.Instances(ctx, cluster)
}

func (cc countingCloud) Launch(ctx context.Context, req providers.LaunchRequest) ([]providers.Instance, error) {
	cc.c.add("cloud Launch")
	for range req.Count {
		cc.c.add("instances launched")
	}
	return cc.next.Launch(ctx, req)
}

func (cc countingCloud) Terminate(ctx context.Context, cluster string, ids []string) error {
	cc.c.add("cloud Terminate")
	for range ids {
		cc.c.add("instances terminated")
	}
	return cc.next.Terminate(ctx, cluster, ids)
}

// phaseHook forwards progress to a Recorder and moves Calls to the phase
// of the step that starts.
type phaseHook struct {
	rec   *Recorder
	calls *Calls
}

func (h phaseHook) StepStarted(s plan.Step, at time.Time) {
	h.calls.SetPhase(string(s.Action))
	h.rec.StepStarted(s, at)
}

func (h phaseHook) StepFinished(s plan.Step, r apply.StepResult) {
	h.calls.mu.Lock()
	h.calls.steps[string(s.Action)]++
	h.calls.wall[string(s.Action)] += r.Elapsed
	h.calls.phase = "between-steps"
	h.calls.mu.Unlock()
	h.rec.StepFinished(s, r)
}
