package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/swarmsync/swarmsync/apply"
	"github.com/swarmsync/swarmsync/plan"
)

// statusReport is everything `swarmsync status` reports. The JSON format is
// this value; the text format is rendered from it.
type statusReport struct {
	FormatVersion int         `json:"format_version"`
	Cluster       string      `json:"cluster"`
	Source        plan.Source `json:"source"`
	ObservedAt    time.Time   `json:"observed_at"`
	Fingerprint   string      `json:"fingerprint"`
	plan.Health
	Drift  statusDrift   `json:"drift"`
	Daemon *daemonStatus `json:"daemon,omitempty"`
}

// statusDrift is what a plan computed now would do.
type statusDrift struct {
	InSync bool `json:"in_sync"`
	Steps  int  `json:"steps"`
	// Changes counts the plan's steps per action; launch counts machines.
	Changes map[plan.Action]int `json:"changes"`
	// Refused is the error of a plan the spec's safety limits refuse.
	Refused string `json:"refused,omitempty"`
	// Blocked says why drift cannot be known ("quorum lost": the planner
	// plans nothing until quorum is back).
	Blocked string `json:"blocked,omitempty"`
	// Held are the nodes the plan leaves alone within update.downGrace.
	Held []plan.HeldNode `json:"held"`
	// LaunchStopped are the groups that launch nothing because their new
	// machines do not join.
	LaunchStopped []plan.LaunchStop `json:"launch_stopped"`
	Notes         []string          `json:"notes"`
}

// daemonStatus is an apply --auto daemon's /status, as read at ReadAt.
type daemonStatus struct {
	Addr   string            `json:"addr"`
	ReadAt time.Time         `json:"read_at"`
	Error  string            `json:"error,omitempty"`
	Loop   *apply.LoopStatus `json:"loop,omitempty"`
}

func renderStatusJSON(w io.Writer, r *statusReport) error {
	enc := json.NewEncoder(exact(w))
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("failed to write status: %w", err)
	}
	return nil
}

// renderStatusText prints the report compactly: a header, the Swarm, a
// table of groups with what is wrong under it, the drift and the daemon.
// It escapes r's strings in place (output.go): r is not used after.
func renderStatusText(w io.Writer, r *statusReport) error {
	escapeFields(r)
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	p("Cluster %s (commit %s, observed %s, fingerprint %.12s)\n\n", r.Cluster, shortCommit(r.Source.Commit), stamp(r.ObservedAt), r.Fingerprint)

	s := r.Swarm
	if s.State == plan.QuorumNone {
		p("Swarm:    not active (no manager has initialised it yet)\n")
	} else {
		leader := "none known"
		if l := s.Leader; l != nil {
			leader = l.ID
			var extra []string
			if l.Hostname != "" {
				extra = append(extra, l.Hostname)
			}
			if l.Addr != "" {
				extra = append(extra, l.Addr)
			}
			if len(extra) > 0 {
				leader += " (" + strings.Join(extra, ", ") + ")"
			}
		}
		p("Swarm:    active, leader %s\n", leader)
		p("Managers: %d/%d reachable, quorum %d: %s\n", s.Reachable, s.Managers, s.Quorum, quorumWords(s))
		p("Nodes:    %d/%d ready", s.Ready, s.Nodes)
		if r.ForeignNodes > 0 {
			p(", %d not owned by swarmsync (never touched)", r.ForeignNodes)
		}
		if r.GhostNodes > 0 {
			p(", %d joins that never completed (no engine described them; removed after update.joinTimeout)", r.GhostNodes)
		}
		p("\n")
	}
	if r.UnownedInstances > 0 {
		p("Unowned:  %d instance(s) without the swarmsync:cluster tag (never touched)\n", r.UnownedInstances)
	}

	width := len("GROUP")
	for _, g := range r.Groups {
		width = max(width, len(g.Name))
	}
	p("\n%-*s  %7s  %9s  %5s  %4s  %11s\n", width, "GROUP", "DESIRED", "INSTANCES", "READY", "DOWN", "OUT-OF-DATE")
	for _, g := range r.Groups {
		desired := fmt.Sprint(g.Desired)
		if !g.Declared {
			desired = "-"
		}
		p("%-*s  %7s  %9d  %5d  %4d  %11d\n", width, g.Name, desired, g.Instances, g.Ready, g.Down, len(g.OutOfDate))
	}
	for _, g := range r.Groups {
		lines := groupProblems(g)
		if len(lines) == 0 {
			continue
		}
		p("\n%s:\n", g.Name)
		for _, l := range lines {
			p("  %s\n", l)
		}
	}

	p("\n")
	d := r.Drift
	switch {
	case d.Refused != "":
		p("Drift:    yes, but the plan is refused: %s\n", d.Refused)
	case d.Blocked != "":
		p("Drift:    not known (%s): nothing is planned until that is resolved; see the notes\n", d.Blocked)
	case d.InSync:
		p("Drift:    in sync with the spec\n")
	default:
		p("Drift:    %s (%s): run 'swarmsync plan' to see them\n", driftWords(d.Changes), count(d.Steps, "step"))
	}
	if len(d.Held) > 0 {
		p("Held:     %d node(s) Down or unreachable while their instances run, left alone for update.downGrace:\n", len(d.Held))
		for _, h := range d.Held {
			p("  %s\n", heldLine(h))
		}
	}
	for _, st := range d.LaunchStopped {
		p("Stopped:  group %s launches nothing: its new machines do not join (kept: %s; the latest launched %s UTC)\n", st.Group, strings.Join(st.Instances, ", "), st.Since.UTC().Format(time.DateTime))
	}
	if len(d.Notes) > 0 {
		p("Notes:\n")
		for _, n := range d.Notes {
			p("  - %s\n", n)
		}
	}

	if dm := r.Daemon; dm != nil {
		p("\nDaemon %s (apply --auto):\n", dm.Addr)
		switch l := dm.Loop; {
		case dm.Error != "":
			p("  unreachable: %s\n", dm.Error)
		case l != nil:
			role := "no (standing by)"
			switch {
			case l.LeaderError != "":
				role = "unknown (not acting): " + l.LeaderError
			case l.Leader:
				role = "yes (acting)"
			}
			p("  leader:    %s\n", role)
			if l.PausedAt != "" {
				p("  paused:    at commit %.12s after a failed step (update.failureAction pause); a new commit resumes\n", l.PausedAt)
			}
			p("  passes:    %d run, %d skipped (not leader)\n", l.Passes, l.Skipped)
			switch {
			case l.Passes == 0:
				p("  last pass: none yet\n")
			case l.LastError != "":
				p("  last pass: %s, %s, FAILED: %s\n", stamp(l.LastEnd), count(l.LastSteps, "step"), l.LastError)
			default:
				p("  last pass: %s, %s, ok (took %s)\n", stamp(l.LastEnd), count(l.LastSteps, "step"), l.LastEnd.Sub(l.LastStart).Round(time.Millisecond))
			}
			if !l.NextPass.IsZero() {
				p("  next pass: %s (in %s)\n", stamp(l.NextPass), max(0, l.NextPass.Sub(dm.ReadAt)).Round(time.Second))
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// quorumWords says how safe the raft membership is.
func quorumWords(s plan.SwarmHealth) string {
	switch s.State {
	case plan.QuorumLost:
		return "QUORUM LOST"
	case plan.QuorumDegraded:
		if spare := s.Reachable - s.Quorum; spare > 0 {
			return fmt.Sprintf("DEGRADED, %d more unreachable manager(s) can be tolerated", spare)
		}
		return "DEGRADED, one more unreachable manager loses quorum"
	}
	return "healthy"
}

// groupProblems lists what does not match in a group, one line each.
func groupProblems(g plan.GroupHealth) []string {
	var out []string
	if !g.Declared {
		out = append(out, "not in the spec (its machines go only with safety.prune)")
	}
	if len(g.OutOfDate) > 0 {
		out = append(out, "out of date: "+strings.Join(g.OutOfDate, ", "))
	}
	for _, in := range g.InstancesWithoutNode {
		out = append(out, fmt.Sprintf("instance %s has no node (%s, launched %s before the observation)", in.ID, in.State, in.Age))
	}
	for _, n := range g.NodesWithoutInstance {
		line := fmt.Sprintf("node %s", n.ID)
		if n.Hostname != "" {
			line += " (" + n.Hostname + ")"
		}
		line += fmt.Sprintf(" has no live instance (%s", n.State)
		if n.Instance != "" {
			line += ", names " + n.Instance
		}
		out = append(out, line+")")
	}
	return out
}

// driftWords is "2 to launch, 1 to drain, 1 to terminate", in the plan
// summary's order; waits alone read "waits only".
func driftWords(changes map[plan.Action]int) string {
	var parts []string
	for _, x := range summaryOrder {
		if n := changes[x.action]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, x.verb))
		}
	}
	if len(parts) == 0 {
		return "waits only"
	}
	return strings.Join(parts, ", ")
}

// stamp renders a time in UTC to the second.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// heldLine says which node is held, since when and until when.
func heldLine(h plan.HeldNode) string {
	l := fmt.Sprintf("node %s (%s, instance %s): ", h.Node, h.Group, h.Instance)
	switch {
	case !h.ReplaceAt.IsZero():
		return l + fmt.Sprintf("Down since %s UTC, replaced at %s UTC if still Down", h.DownSince.UTC().Format(time.DateTime), h.ReplaceAt.UTC().Format(time.DateTime))
	case !h.DownSince.IsZero():
		return l + "Down since " + h.DownSince.UTC().Format(time.DateTime) + " UTC"
	default:
		return l + "not Down (or since when is not recorded): replaced once Down for the grace"
	}
}
