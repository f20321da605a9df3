package plan

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestUnmarshalObservedRefusesWhatNoProviderWrites(t *testing.T) {
	const obs = `{"format_version": 1, "cluster": "prod",
  "instances": [
    {"id": "i-1", "state": "running"},
    {"id": "i-1", "state": "running"},
    {"id": "", "state": "exploded"}
  ],
  "unowned": [{"id": "i-1", "state": "running"}],
  "swarm": {"active": true, "nodes": [
    {"id": "n-1", "role": "manager", "availability": "active", "state": "ready", "reachability": "reachable", "leader": true},
    {"id": "n-1", "role": "overlord", "availability": "sleepy", "state": "ready", "leader": true},
    {"id": "n-3", "role": "worker", "availability": "drain", "state": "gone", "reachability": "maybe"}
  ]}}`
	_, err := UnmarshalObserved([]byte(obs))
	if err == nil {
		t.Fatal("observation accepted")
	}
	want := []string{
		`instances[1].id: instance "i-1" is listed twice (also instances[0]): an observation lists each instance once`,
		`instances[2].id: missing: every instance needs its id`,
		`instances[2].state: unknown instance state "exploded": expected one of pending, running, shutting-down, terminated, stopping, stopped`,
		`unowned[0].id: instance "i-1" is listed twice (also instances[0]): an observation lists each instance once`,
		`swarm.nodes[1].id: node "n-1" is listed twice (also swarm.nodes[0]): an observation lists each node once`,
		`swarm.nodes[1].role: unknown role "overlord": expected one of manager, worker`,
		`swarm.nodes[1].availability: unknown availability "sleepy": expected one of active, pause, drain`,
		`swarm.nodes[1].leader: a second leader: a Swarm has one`,
		`swarm.nodes[1].leader: the leader is a overlord: only a manager leads`,
		`swarm.nodes[2].state: unknown node state "gone": expected one of ready, down, unknown, disconnected`,
		`swarm.nodes[2].reachability: unknown reachability "maybe": expected one of reachable, unreachable, unknown`,
	}
	if d := cmp.Diff(want, strings.Split(err.Error(), "\n")); d != "" {
		t.Errorf("errors (-want +got):\n%s", d)
	}
}

func TestUnmarshalPlanRefusesBrokenSteps(t *testing.T) {
	const js = `{"format_version": 1, "cluster": "prod", "steps": [
  {"id": "a", "action": "launch"},
  {"id": "a", "action": "launch"},
  {"id": "", "action": "drain", "depends_on": ["a", "ghost\u001b"]}
]}`
	_, err := UnmarshalPlan([]byte(js))
	if err == nil {
		t.Fatal("plan accepted")
	}
	want := []string{
		`steps[1].id: step "a" is listed twice (also steps[0])`,
		`steps[2].id: missing: every step needs its id`,
		`steps[2].depends_on[1]: no step "ghost\x1b" in the plan`,
	}
	if d := cmp.Diff(want, strings.Split(err.Error(), "\n")); d != "" {
		t.Errorf("errors (-want +got):\n%s", d)
	}
}
