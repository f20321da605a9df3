package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/swarmsync/swarmsync/apply"
	"github.com/swarmsync/swarmsync/plan"
)

// statusOptions are the flags of `swarmsync status`.
type statusOptions struct {
	src      sourceFlags
	cluster  string
	observed string
	daemon   string
	format   string
	detailed bool
}

// daemonTimeout bounds the request to an apply --auto daemon's /status.
const daemonTimeout = 5 * time.Second

func init() {
	register(func(a *app) *cobra.Command {
		var o statusOptions
		cmd := &cobra.Command{
			Use:   "status",
			Short: "Report a cluster's health: Swarm quorum, groups against the spec, drift",
			Long: `status observes the cluster once (or reads a saved observation with
--observed), sets it against the spec and reports:

  - the source revision and the cluster;
  - the Swarm: the leader, managers reachable out of the raft membership and
    the quorum it needs (healthy, degraded, or QUORUM LOST);
  - per group: the spec's count against live instances and Ready/Down nodes,
    out-of-date instances, instances without a node, nodes without an
    instance;
  - drift: "in sync", or what a plan would do now, with the plan's notes;
  - with --daemon HOST:PORT, the /status of an 'apply --auto --listen'
    daemon at that address: passes, leadership, the last pass and the next.

status changes nothing. --format json prints the same report as JSON.

Exit codes: 0 the status was read (whatever it shows); 1 error (including
a --daemon address that does not answer); with --detailed-exitcode, 2 when
the cluster drifts from its spec (or the spec's safety limits refuse the
plan) or quorum is at risk (a manager unreachable, or quorum lost).`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error { return runStatus(cmd.Context(), a, &o) },
		}
		o.src.register(cmd.Flags())
		cmd.Flags().StringVar(&o.cluster, "cluster", "", "cluster to report (may be omitted when the specs define one cluster)")
		cmd.Flags().StringVar(&o.observed, "observed", "", "report on this saved observation (from 'swarmsync observe') instead of observing")
		cmd.Flags().StringVar(&o.daemon, "daemon", "", "also read the /status of an 'apply --auto --listen' daemon at HOST:PORT")
		cmd.Flags().StringVar(&o.format, "format", "text", "output format: text or json")
		cmd.Flags().BoolVar(&o.detailed, "detailed-exitcode", false, "exit 2 when the cluster drifts from its spec or quorum is at risk")
		return cmd
	})
}

func runStatus(ctx context.Context, a *app, o *statusOptions) error {
	render := map[string]func(io.Writer, *statusReport) error{
		"text": renderStatusText,
		"json": renderStatusJSON,
	}[o.format]
	if render == nil {
		return fmt.Errorf("unknown --format %q: use text or json", o.format)
	}
	if o.daemon != "" {
		if err := checkDaemonAddr(o.daemon); err != nil {
			return err
		}
	}
	c, src, err := loadCluster(ctx, a, &o.src, o.cluster)
	if err != nil {
		return err
	}
	obs, err := observation(ctx, a, c, o.observed)
	if err != nil {
		return err
	}
	r := &statusReport{
		FormatVersion: plan.FormatVersion,
		Cluster:       c.Name,
		Source:        src,
		ObservedAt:    obs.TakenAt,
		Fingerprint:   obs.Fingerprint(),
		Health:        plan.ClusterHealth(c, obs),
	}
	p, err := plan.Compute(c, obs, src)
	var refused *plan.RefusedError
	switch {
	case errors.As(err, &refused):
		r.Drift = statusDrift{Changes: map[plan.Action]int{}, Held: []plan.HeldNode{}, LaunchStopped: []plan.LaunchStop{}, Notes: []string{}, Refused: refused.Error()}
	case err != nil:
		return err
	default:
		r.Drift = driftOf(p, r.Swarm)
	}
	var derr error
	if o.daemon != "" {
		r.Daemon, derr = readDaemon(ctx, o.daemon)
	}
	if err := render(a.stdout, r); err != nil {
		return err
	}
	if derr != nil {
		return derr
	}
	if o.detailed && (!r.Drift.InSync || r.Health.Swarm.AtRisk()) {
		return exitCodeError{exitChanges}
	}
	return nil
}

// driftOf summarises a plan: launches count machines, the other actions
// count steps. Without quorum the planner plans nothing, so an empty plan
// then says nothing about drift.
func driftOf(p *plan.Plan, s plan.SwarmHealth) statusDrift {
	d := statusDrift{InSync: len(p.Steps) == 0, Steps: len(p.Steps), Changes: map[plan.Action]int{}, Held: p.Held, Notes: p.Notes}
	if s.State == plan.QuorumLost {
		d.InSync, d.Blocked = false, "quorum lost"
	}
	if d.Held == nil {
		d.Held = []plan.HeldNode{}
	}
	d.LaunchStopped = p.LaunchStopped
	if d.LaunchStopped == nil {
		d.LaunchStopped = []plan.LaunchStop{}
	}
	if d.Notes == nil {
		d.Notes = []string{}
	}
	for _, s := range p.Steps {
		if s.Action == plan.ActionLaunch {
			d.Changes[s.Action] += max(1, s.Count)
		} else {
			d.Changes[s.Action]++
		}
	}
	return d
}

// checkDaemonAddr accepts only HOST:PORT (no scheme, path or credentials),
// so the request goes exactly where the user said and nothing else.
func checkDaemonAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || port == "" || strings.ContainsAny(addr, "/@?#") {
		return fmt.Errorf("--daemon %q: want HOST:PORT, the address given to 'apply --auto --listen' (e.g. 127.0.0.1:9090)", addr)
	}
	return nil
}

// readDaemon reads the reconcile loop's status from an apply --auto daemon.
// The returned status is never nil; on error it carries the error too.
func readDaemon(ctx context.Context, addr string) (*daemonStatus, error) {
	d := &daemonStatus{Addr: addr, ReadAt: time.Now().UTC()}
	fail := func(err error) (*daemonStatus, error) {
		d.Error = err.Error()
		return d, fmt.Errorf("failed to read the apply --auto status from %s: %w", addr, err)
	}
	ctx, cancel := context.WithTimeout(ctx, daemonTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/status", nil)
	if err != nil {
		return fail(err)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		var uerr interface{ Unwrap() error }
		if errors.As(err, &uerr) && uerr.Unwrap() != nil {
			err = uerr.Unwrap() // drop the URL the client repeats
		}
		return fail(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fail(fmt.Errorf("GET /status answered %s", resp.Status))
	}
	var st apply.LoopStatus
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&st); err != nil {
		return fail(fmt.Errorf("failed to decode /status: %w", err))
	}
	d.Loop = &st
	return d, nil
}
