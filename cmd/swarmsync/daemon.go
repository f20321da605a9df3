package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/swarmsync/swarmsync/apply"
	"github.com/swarmsync/swarmsync/apply/metrics"
	"github.com/swarmsync/swarmsync/observe"
	"github.com/swarmsync/swarmsync/plan"
	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/schema"
	"github.com/swarmsync/swarmsync/sync/webhook"
)

// stopGrace is how long a pass may take to reach the end of its running
// steps after SIGTERM before they are cancelled (deploy/stack.yml gives the
// task longer than this).
const stopGrace = 20 * time.Second

// daemon is `apply --auto`: the reconcile loop, its endpoint on this
// manager, and its HTTP server.
type daemon struct {
	a      *app
	o      *applyOptions
	log    *slog.Logger
	r      *apply.Reconciler
	stop   <-chan struct{}
	secret []byte
	// endpoint is this manager's Docker endpoint, kept for the leadership
	// watch; nil with the local provider and no DOCKER_HOST (then every
	// check connects anew).
	endpoint providers.Swarm
	cluster  schema.Cluster
	metrics  *metrics.Metrics
}

// runApplyAuto runs the daemon until SIGTERM (or interrupt): the first
// pass at once, then on schedule, on becoming leader and on webhooks.
func runApplyAuto(ctx context.Context, a *app, o *applyOptions) error {
	if o.format != "text" && o.format != "json" {
		return fmt.Errorf("unknown --format %q: use text or json", o.format)
	}
	c, _, err := loadCluster(ctx, a, &o.src, o.cluster)
	if err != nil {
		return err
	}
	sched, err := schema.ParseCron(c.Schedule.Reconcile)
	if err != nil {
		return fmt.Errorf("schedule.reconcile of cluster %s: %w", c.Name, err)
	}
	logger := slog.New(slog.NewTextHandler(a.stderr, nil))
	if o.format == "json" {
		logger = slog.New(slog.NewJSONHandler(exact(a.stdout), nil))
	}
	d := &daemon{a: a, o: o, log: logger, stop: ctx.Done(), cluster: c, metrics: metrics.New(c.Name)}
	if d.secret, err = webhookSecret(o.webhookSecretFile); err != nil {
		return err
	}
	if os.Getenv("DOCKER_HOST") != "" || c.Provider.Kind() != "local" {
		if d.endpoint, err = envSwarm(); err != nil {
			return err
		}
		defer closeClient(d.endpoint)
	}
	d.r = &apply.Reconciler{
		Schedule: sched,
		Clock:    apply.SystemClock{},
		Logger:   logger,
		Leader:   d.isLeader,
		Load:     d.load,
		Stop:     ctx.Done(),
		Hook:     d.metrics,
	}
	// Passes run on their own context: SIGTERM stops them between steps
	// (Deps.Stop), and cancels what still runs stopGrace later.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	go func() {
		select {
		case <-ctx.Done():
		case <-work.Done():
			return
		}
		select {
		case <-time.After(stopGrace):
			logger.Warn("steps still running after the stop grace period: cancelling them", "grace", stopGrace.String())
			cancelWork()
		case <-work.Done():
		}
	}()
	if o.listen != "" {
		stopHTTP, err := d.serve(work, o.listen)
		if err != nil {
			return err
		}
		defer stopHTTP()
	}
	logger.Info("reconciling", "cluster", c.Name, "schedule", c.Schedule.Reconcile, "webhook", d.secret != nil)
	err = d.r.Run(work)
	logger.Info("stopped")
	return err
}

// webhookSecret reads the webhook secret: --webhook-secret-file, else the
// Docker secret's file when it exists. None (or an empty file) disables
// /webhook.
func webhookSecret(path string) ([]byte, error) {
	if path == "" {
		if _, err := os.Stat(defaultWebhookSecretFile); err != nil {
			return nil, nil
		}
		path = defaultWebhookSecretFile
	}
	s, err := readSecretFile(path, "--webhook-secret-file")
	if err != nil || s == "" {
		return nil, err
	}
	return []byte(s), nil
}

// closeClient closes a provider client when it holds connections.
func closeClient(x any) {
	if c, ok := x.(io.Closer); ok {
		_ = c.Close()
	}
}

// isLeader is the leadership check the loop runs every second.
func (d *daemon) isLeader(ctx context.Context) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	sw := d.endpoint
	if sw == nil {
		cloud, s, err := connect(ctx, d.a, d.cluster)
		if err != nil {
			return false, err
		}
		defer closeClient(cloud)
		defer closeClient(s)
		if s == nil {
			return false, errors.New("no manager endpoint found")
		}
		sw = s
	}
	return sw.IsLeader(ctx)
}

// load pulls the spec and connects for one pass; Close releases the
// clients.
func (d *daemon) load(ctx context.Context) (apply.Loaded, error) {
	desired, src, err := loadCluster(ctx, d.a, &d.o.src, d.cluster.Name)
	if err != nil {
		return apply.Loaded{}, err
	}
	sched, err := schema.ParseCron(desired.Schedule.Reconcile)
	if err != nil {
		return apply.Loaded{}, fmt.Errorf("schedule.reconcile of cluster %s: %w", desired.Name, err)
	}
	cloud, sw, err := connect(ctx, d.a, desired)
	if err != nil {
		return apply.Loaded{}, err
	}
	ld := apply.Loaded{
		Commit:         src.Commit,
		Schedule:       sched,
		PauseOnFailure: desired.Update.FailureAction == "pause",
		Close:          func() { closeSwarm(sw); closeClient(cloud) },
	}
	ld.Apply = func(ctx context.Context) (_ apply.Applied, err error) {
		lo := d.o.leaseOpts
		lo.Logger = d.log
		lease, err := takeLease(ctx, sw, lo)
		if err != nil {
			return apply.Applied{}, err
		}
		// Released on every way out, SIGTERM included.
		defer func() { err = dropLease(ctx, lease, err) }()
		obs, err := observe.TakeFor(ctx, cloud, sw, desired, time.Now())
		if err != nil {
			return apply.Applied{}, err
		}
		d.metrics.Observed(plan.ClusterHealth(desired, obs))
		p, err := plan.Compute(desired, obs, src)
		if err != nil {
			return apply.Applied{}, err
		}
		if len(p.Steps) == 0 {
			return apply.Applied{}, nil
		}
		res, err := apply.Run(ctx, p, apply.Deps{
			Cloud: cloud, Swarm: sw, Dialer: dialerFor(cloud),
			Clock: apply.SystemClock{}, Logger: d.log, Stop: d.stop, Lease: lease,
		})
		return apply.Applied{Plan: p, Result: res, Steps: len(p.Steps)}, err
	}
	return ld, nil
}

// serve starts the HTTP server: /healthz, /readyz, /status, /metrics and,
// with a secret, /webhook.
func (d *daemon) serve(ctx context.Context, addr string) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("failed to listen on %s: %w", addr, err)
	}
	if d.o.peerPort == 0 {
		d.o.peerPort = ln.Addr().(*net.TCPAddr).Port
	}
	mux := statusMux(d.r)
	mux.Handle("GET /metrics", d.metrics.Handler())
	if d.secret != nil {
		v, err := webhook.NewVerifier(d.secret)
		if err != nil {
			ln.Close()
			return nil, err
		}
		mux.Handle("/webhook", &webhook.Handler{Verifier: v, Deliver: d.deliver, Count: d.metrics.Delivery})
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
			d.log.Error("http server stopped", "error", err.Error())
		}
	}()
	d.log.Info("serving status", "addr", ln.Addr().String())
	return func() { _ = srv.Shutdown(context.WithoutCancel(ctx)) }, nil
}

// statusMux serves /healthz (the loop is alive), /readyz (leadership
// answers) and /status (the loop's status as JSON).
func statusMux(r *apply.Reconciler) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		st := r.Status()
		switch {
		case st.Passes+st.Skipped == 0:
			http.Error(w, "not ready: no leadership check yet", http.StatusServiceUnavailable)
		case st.LeaderError != "":
			http.Error(w, "not ready: leadership unknown: "+st.LeaderError, http.StatusServiceUnavailable)
		default:
			io.WriteString(w, "ready\n")
		}
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(r.Status())
	})
	return mux
}

// serveStatus serves statusMux on addr until stop is called.
func serveStatus(ctx context.Context, addr string, r *apply.Reconciler, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("failed to listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: statusMux(r), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
			log.Error("status server stopped", "error", err.Error())
		}
	}()
	log.Info("serving status", "addr", ln.Addr().String())
	return func() { _ = srv.Shutdown(context.WithoutCancel(ctx)) }, nil
}

// deliver starts the pass for a verified delivery: here when this daemon
// is the leader's, else on the leader's daemon (found through the Swarm:
// the leader's manager address and --peer-port), re-signed with the shared
// secret. A forwarded delivery is never forwarded again: leadership moved
// meanwhile, and the new leader starts a pass on becoming leader anyway.
func (d *daemon) deliver(ctx context.Context, dl webhook.Delivery) (string, error) {
	if d.r.Status().Leader || dl.Forwarded {
		d.r.Trigger(apply.TriggerWebhook)
		d.log.Info("webhook delivery accepted", "kind", dl.Kind, "forwarded", dl.Forwarded)
		return webhook.ResultAccepted, nil
	}
	addr, err := d.leaderDaemon(ctx)
	if err != nil {
		return "", err
	}
	body, _ := json.Marshal(map[string]string{"kind": dl.Kind, "delivery": dl.ID})
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/webhook", bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("failed to forward to the leader's daemon at %s: %w", addr, err)
	}
	req.Header.Set(webhook.HeaderSignature, webhook.Sign(d.secret, body, time.Now()))
	req.Header.Set(webhook.HeaderDelivery, "fwd/"+dl.Kind+"/"+dl.ID)
	req.Header.Set(webhook.HeaderForwarded, "1")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("failed to forward to the leader's daemon at %s: %w", addr, errors.Unwrap(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return "", fmt.Errorf("the leader's daemon at %s answered %s", addr, resp.Status)
	}
	d.log.Info("webhook delivery forwarded to the leader's daemon", "kind", dl.Kind, "leader", addr)
	return webhook.ResultForwarded, nil
}

// leaderDaemon is the leader's daemon address: the leader's manager
// address from this endpoint's Swarm, with the peer port.
func (d *daemon) leaderDaemon(ctx context.Context) (string, error) {
	sw := d.endpoint
	if sw == nil {
		return "", errors.New("no endpoint of this manager to find the leader through (set DOCKER_HOST)")
	}
	st, err := sw.Observe(ctx)
	if err != nil {
		return "", fmt.Errorf("failed to find the leader: %w", err)
	}
	host, _, err := net.SplitHostPort(st.LeaderAddr)
	if err != nil || host == "" {
		return "", errors.New("the Swarm knows no leader now")
	}
	return net.JoinHostPort(host, strconv.Itoa(d.o.peerPort)), nil
}
