package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/swarmsync/swarmsync/apply"
	"github.com/swarmsync/swarmsync/observe"
	"github.com/swarmsync/swarmsync/plan"
	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/schema"
)

// applyOptions are the flags of `swarmsync apply`.
type applyOptions struct {
	src     sourceFlags
	cluster string
	yes     bool
	dryRun  bool
	format  string
	auto    bool
	listen  string
	// webhookSecretFile holds the webhook secret (a Docker secret).
	webhookSecretFile string
	lease             leaseFlags
	// leaseOpts are the lease's options, resolved from the flags.
	leaseOpts apply.LeaseOptions
	// peerPort is the port of the other managers' daemons (webhook
	// forwarding); 0 means the --listen port.
	peerPort int
}

func init() {
	register(func(a *app) *cobra.Command {
		var o applyOptions
		cmd := &cobra.Command{
			Use:   "apply [PLANFILE]",
			Short: "Change the cluster to match its spec, acting only through the Swarm leader",
			Long: `apply brings a cluster to the shape its spec declares.

Without PLANFILE it observes the cluster, computes a plan, shows it and asks
for confirmation on a terminal (without a terminal it needs --yes). With
PLANFILE (from 'swarmsync plan --out') it recomputes the plan from the spec at
the plan's source revision and a fresh observation, and executes it only if
the steps are the same; otherwise it names the first difference ("plan is
stale", "plan file does not match its source", "outside the disruption
window") and changes nothing.

Every apply first takes the apply lease on the Swarm (one applier at a time;
--lease-timeout, default 60s or $SWARMSYNC_LEASE_TTL, is how long it outlives
a holder that dies): another apply holding it is named and nothing is done.
See 'swarmsync force-unlock'.

apply acts only through the Swarm leader: it checks before every step that
its Docker endpoint (DOCKER_HOST; with the local provider and no DOCKER_HOST,
the leader among the cluster's managers) is the leader, and stops at once
when it is not. An interrupted or failed apply is finished by running
plan/apply again. --auto runs the reconcile loop: run it on every manager
(deploy/stack.yml), only the leader acts. A pass starts on schedule.reconcile,
at once when this manager becomes leader (checked every second), and on a
verified webhook delivery to /webhook on --listen (GitHub, GitLab or a
generic HMAC header; a follower forwards it to the leader's daemon). --listen
also serves /healthz, /readyz and /status. SIGTERM stops between steps.

Progress: one line per step start and finish; on a terminal, the steps
running now are shown below with their elapsed time, redrawn every second.
With --format json, one JSON
event per line: {"type":"plan",...}, {"type":"step_started","step",...},
{"type":"step_finished","step","status","elapsed_ms","error",...} and a
final {"type":"summary","done","failed","skipped","not_run"}. Join tokens
never appear in any output.`,
			Args: cobra.MaximumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				holder := "apply"
				if o.auto {
					holder = "apply --auto"
				}
				var err error
				if o.leaseOpts, err = o.lease.options(cmd.Flags(), holder, warnLogger(a)); err != nil {
					return err
				}
				if len(args) == 1 {
					if o.auto || o.dryRun {
						return errors.New("a plan file cannot be combined with --auto or --dry-run")
					}
					return runApplyPlanFile(cmd.Context(), a, &o, cmd.Flags(), args[0])
				}
				if o.auto {
					return runApplyAuto(cmd.Context(), a, &o)
				}
				return runApply(cmd.Context(), a, &o)
			},
		}
		o.src.register(cmd.Flags())
		cmd.Flags().StringVar(&o.cluster, "cluster", "", "the cluster to apply (needed when the specs define several)")
		cmd.Flags().BoolVar(&o.yes, "yes", false, "apply without asking for confirmation")
		cmd.Flags().BoolVar(&o.dryRun, "dry-run", false, "compute and show the plan, change nothing")
		cmd.Flags().StringVar(&o.format, "format", "text", "output format: text, or json (one event per line)")
		cmd.Flags().BoolVar(&o.auto, "auto", false, "reconcile continuously on schedule.reconcile (only the leader acts)")
		o.lease.register(cmd.Flags())
		cmd.Flags().StringVar(&o.listen, "listen", "", "with --auto: serve /healthz and /status on this address (e.g. 127.0.0.1:9090)")
		cmd.Flags().IntVar(&o.peerPort, "peer-port", 0, "with --auto: the port the other managers' daemons listen on, to forward webhook deliveries to the leader's (default: the --listen port)")
		cmd.Flags().StringVar(&o.webhookSecretFile, "webhook-secret-file", "", "with --auto: file holding the webhook secret (default: "+defaultWebhookSecretFile+" if it exists)")
		return cmd
	})
}

// loadCluster checks out the source and loads the one cluster to act on.
func loadCluster(ctx context.Context, a *app, src *sourceFlags, name string) (schema.Cluster, plan.Source, error) {
	co, err := src.checkout(ctx)
	if err != nil {
		return schema.Cluster{}, plan.Source{}, err
	}
	res, err := loadSpecs(ctx, a, co)
	if err != nil {
		return schema.Cluster{}, plan.Source{}, err
	}
	var c schema.Cluster
	switch {
	case name != "":
		if c, err = res.Cluster(name); err != nil {
			return schema.Cluster{}, plan.Source{}, err
		}
	case len(res.Clusters) == 1:
		c = res.Clusters[0]
	default:
		names := make([]string, len(res.Clusters))
		for i, x := range res.Clusters {
			names[i] = x.Name
		}
		return schema.Cluster{}, plan.Source{}, fmt.Errorf("the specs define %d clusters (%s): choose one with --cluster", len(res.Clusters), strings.Join(names, ", "))
	}
	src2 := plan.Source{Repo: co.Repo, Ref: co.Ref, Commit: co.Commit, Path: co.Path, SpecDigest: res.Digest}
	return c, src2, nil
}

// session is one connected pass: the providers, the apply lease and a
// fresh observation.
type session struct {
	cloud    providers.Cloud
	swarm    providers.Swarm
	observed plan.Observed
	// lease is the apply lease, taken before the observation when a Swarm
	// exists (not held yet otherwise); nil for a session that changes
	// nothing.
	lease *apply.Lease
}

// newSession connects, takes the apply lease when lo is set, and observes.
// The caller releases the lease (dropLease) whatever happens next.
func newSession(ctx context.Context, a *app, c schema.Cluster, lo *apply.LeaseOptions) (*session, error) {
	cloud, sw, err := connect(ctx, a, c)
	if err != nil {
		return nil, err
	}
	s := &session{cloud: cloud, swarm: sw}
	if lo != nil {
		if s.lease, err = takeLease(ctx, sw, *lo); err != nil {
			return nil, err
		}
	}
	if s.observed, err = observe.TakeFor(ctx, cloud, sw, c, time.Now()); err != nil {
		return nil, dropLease(ctx, s.lease, err)
	}
	return s, nil
}

// warnLogger logs warnings and errors to stderr (through the live apply
// view while one runs: see logSwitch).
func warnLogger(a *app) *slog.Logger {
	return slog.New(slog.NewTextHandler(a.logOut(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// logSwitch is where the command's log lines go: stderr, or while a live
// apply view runs, through the view, so that a line never lands inside its
// running region (which the next redraw would then erase only in part).
type logSwitch struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *logSwitch) Write(p []byte) (int, error) {
	l.mu.Lock()
	w := l.w
	l.mu.Unlock()
	return w.Write(p)
}

// set directs the lines to w and returns where they went before.
func (l *logSwitch) set(w io.Writer) io.Writer {
	l.mu.Lock()
	defer l.mu.Unlock()
	prev := l.w
	l.w = w
	return prev
}

// logOut is the app's log switch (stderr until a live view takes it).
func (a *app) logOut() *logSwitch {
	if a.logs == nil {
		a.logs = &logSwitch{w: a.stderr}
	}
	return a.logs
}

// runApply: take the lease, plan, show, confirm, apply, drop the lease.
func runApply(ctx context.Context, a *app, o *applyOptions) error {
	v, err := applyViewFor(a.stdout, o.format)
	if err != nil {
		return err
	}
	c, src, err := loadCluster(ctx, a, &o.src, o.cluster)
	if err != nil {
		return err
	}
	var lo *apply.LeaseOptions
	if !o.dryRun {
		lo = &o.leaseOpts
	}
	s, err := newSession(ctx, a, c, lo)
	if err != nil {
		return err
	}
	return dropLease(ctx, s.lease, applyFresh(ctx, a, o, v, c, src, s))
}

func applyFresh(ctx context.Context, a *app, o *applyOptions, v *applyView, c schema.Cluster, src plan.Source, s *session) error {
	p, err := plan.Compute(c, s.observed, src)
	if err != nil {
		return err
	}
	if err := v.plan(p); err != nil {
		return err
	}
	if len(p.Steps) == 0 || o.dryRun {
		return nil
	}
	// Refuse early, before asking, when this endpoint cannot act.
	if s.observed.Swarm.Active {
		if err := apply.CheckLeader(ctx, s.swarm); err != nil {
			return err
		}
	}
	if !o.yes {
		ok, err := confirm(a, p)
		if err != nil {
			return err
		}
		if !ok {
			return errors.New("apply cancelled: nothing was changed")
		}
	}
	return execute(ctx, a, v, p, s)
}

// runApplyPlanFile executes a saved plan after re-verifying it: the plan
// recomputed from the spec at its source revision and a fresh observation
// (under the lease) must have the same steps (planfile.go).
func runApplyPlanFile(ctx context.Context, a *app, o *applyOptions, fs *pflag.FlagSet, path string) error {
	v, err := applyViewFor(a.stdout, o.format)
	if err != nil {
		return err
	}
	b, err := readInput(path, "plan file")
	if err != nil {
		return err
	}
	p, err := plan.UnmarshalPlan(b)
	if err != nil {
		return prefixEach("failed to read plan file "+path, err)
	}
	if o.cluster != "" && o.cluster != p.Cluster {
		return fmt.Errorf("plan file %s is for cluster %q, not %q", path, p.Cluster, o.cluster)
	}
	c, src, err := loadPlanSource(ctx, a, &o.src, fs, p)
	if err != nil {
		return err
	}
	s, err := newSession(ctx, a, c, &o.leaseOpts)
	if err != nil {
		return err
	}
	return dropLease(ctx, s.lease, applySaved(ctx, a, v, p, c, src, s))
}

func applySaved(ctx context.Context, a *app, v *applyView, p *plan.Plan, c schema.Cluster, src plan.Source, s *session) error {
	run, err := plan.Verify(p, c, s.observed, src)
	if err != nil {
		return err
	}
	if len(run.Steps) == 0 {
		return v.plan(run)
	}
	return execute(ctx, a, v, run, s)
}

// execute runs the plan with progress to the view.
func execute(ctx context.Context, a *app, v *applyView, p *plan.Plan, s *session) error {
	defer v.close()
	if v.live != nil {
		defer a.logOut().set(a.logOut().set(v.logWriter(a.stderr)))
	}
	res, err := apply.Run(ctx, p, apply.Deps{
		Cloud: s.cloud, Swarm: s.swarm, Dialer: dialerFor(s.cloud),
		Clock: apply.SystemClock{}, Hook: v, Logger: warnLogger(a),
		FindLeader: leaderFinderFor(s.cloud, p.Cluster),
		Lease:      s.lease,
	})
	if res != nil {
		if verr := v.summary(res); verr != nil && err == nil {
			err = verr
		}
	}
	return err
}

// confirm asks on a terminal; without one it refuses (use --yes).
func confirm(a *app, p *plan.Plan) (bool, error) {
	f, ok := a.stdin.(*os.File)
	if !ok || !isTerminal(f) {
		return false, errors.New("apply needs confirmation, but stdin is not a terminal: run with --yes, or apply a saved plan file")
	}
	fmt.Fprintf(a.stdout, "\nApply %s to cluster %s? Only 'yes' will be accepted: ", count(len(p.Steps), "step"), p.Cluster)
	line, err := bufio.NewReader(a.stdin).ReadString('\n')
	if err != nil && err != io.EOF {
		return false, fmt.Errorf("failed to read confirmation: %w", err)
	}
	return strings.TrimSpace(line) == "yes", nil
}

// isTerminal reports whether f is a terminal (not merely a character
// device such as /dev/null).
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
