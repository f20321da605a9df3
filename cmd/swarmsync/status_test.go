package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/swarmsync/swarmsync/apply"
	"github.com/swarmsync/swarmsync/schema"
)

// startLoop runs a real reconcile loop (apply.Reconciler on the wall clock)
// whose passes are pass, behind the real status server of apply --auto
// (serveStatus) on a loopback port. It returns the server's address once
// the loop has finished its first pass.
func startLoop(t *testing.T, leader bool, pass func(context.Context) (int, error)) string {
	t.Helper()
	sched, err := schema.ParseCron("@every 1h")
	if err != nil {
		t.Fatal(err)
	}
	r := &apply.Reconciler{
		Schedule: sched,
		Clock:    apply.SystemClock{},
		Leader:   func(context.Context) (bool, error) { return leader, nil },
		Load: func(context.Context) (apply.Loaded, error) {
			return apply.Loaded{Commit: "c1", Apply: func(ctx context.Context) (apply.Applied, error) {
				n, err := pass(ctx)
				return apply.Applied{Steps: n}, err
			}}, nil
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	var logs bytes.Buffer
	stop, err := serveStatus(ctx, "127.0.0.1:0", r, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; stop() })
	var line struct{ Addr string }
	if err := json.Unmarshal(logs.Bytes(), &line); err != nil || line.Addr == "" {
		t.Fatalf("no address in the status server's log %q: %v", logs.String(), err)
	}
	// The first pass runs at once; wait (bounded) until its status is out.
	deadline := time.Now().Add(10 * time.Second)
	for r.Status().NextPass.IsZero() {
		if time.Now().After(deadline) {
			t.Fatalf("the loop did not finish its first pass: %+v", r.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return line.Addr
}

// TestStatusDaemon reads the /status of a real reconcile loop served by
// apply --auto's status server, over loopback HTTP, through the CLI.
func TestStatusDaemon(t *testing.T) {
	fx := "../../fixtures/plans/no-changes"
	status := func(t *testing.T, args ...string) (int, string, string) {
		t.Helper()
		var out, errb bytes.Buffer
		code := Main(append([]string{"status", "--repo", fx, "--observed", fx + "/observed.json"}, args...), strings.NewReader(""), &out, &errb)
		return code, out.String(), errb.String()
	}
	var calls atomic.Int32

	t.Run("leader, pass ok", func(t *testing.T) {
		addr := startLoop(t, true, func(context.Context) (int, error) { calls.Add(1); return 3, nil })
		code, out, errs := status(t, "--daemon", addr, "--detailed-exitcode")
		if code != 0 || errs != "" {
			t.Fatalf("exit %d, stderr %q\n%s", code, errs, out)
		}
		for _, re := range []string{
			`(?m)^Daemon ` + regexp.QuoteMeta(addr) + ` \(apply --auto\):$`,
			`(?m)^  leader: +yes \(acting\)$`,
			`(?m)^  passes: +1 run, 0 skipped \(not leader\)$`,
			`(?m)^  last pass: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC, 3 steps, ok \(took \d+(\.\d+)?[mµn]?s\)$`,
			`(?m)^  next pass: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(in (59m\d+s|1h0m0s)\)$`,
		} {
			if !regexp.MustCompile(re).MatchString(out) {
				t.Errorf("output does not match %s:\n%s", re, out)
			}
		}
		if calls.Load() != 1 {
			t.Errorf("the loop ran %d passes, want 1", calls.Load())
		}

		code, out, _ = status(t, "--daemon", addr, "--format", "json")
		if code != 0 {
			t.Fatalf("json: exit %d", code)
		}
		var rep statusReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("json: %v\n%s", err, out)
		}
		d := rep.Daemon
		if d == nil || d.Addr != addr || d.Error != "" || d.Loop == nil || d.Loop.Passes != 1 || !d.Loop.Leader || d.Loop.LastSteps != 3 || d.Loop.NextPass.IsZero() {
			t.Errorf("json daemon = %+v (loop %+v)", d, d.Loop)
		}
		if !rep.Drift.InSync || rep.Swarm.Reachable != 3 {
			t.Errorf("json drift/swarm = %+v / %+v", rep.Drift, rep.Swarm)
		}
	})

	t.Run("leader, pass failed", func(t *testing.T) {
		addr := startLoop(t, true, func(context.Context) (int, error) { return 1, errors.New("launch refused by the cloud") })
		code, out, _ := status(t, "--daemon", addr)
		if code != 0 || !strings.Contains(out, "1 step, FAILED: launch refused by the cloud") {
			t.Errorf("exit %d\n%s", code, out)
		}
	})

	t.Run("follower", func(t *testing.T) {
		addr := startLoop(t, false, func(context.Context) (int, error) { t.Error("a follower ran a pass"); return 0, nil })
		code, out, _ := status(t, "--daemon", addr)
		for _, want := range []string{"  leader:    no (standing by)\n", "  passes:    0 run, 1 skipped (not leader)\n", "  last pass: none yet\n"} {
			if !strings.Contains(out, want) {
				t.Errorf("exit %d: output lacks %q:\n%s", code, want, out)
			}
		}
	})

	t.Run("nothing listening", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		code, out, errs := status(t, "--daemon", addr)
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		if !strings.Contains(errs, "failed to read the apply --auto status from "+addr+": ") || !strings.Contains(errs, "connection refused") {
			t.Errorf("stderr = %q", errs)
		}
		if strings.Contains(errs, "http://") {
			t.Errorf("stderr repeats the URL: %q", errs)
		}
		// The cluster's status is still shown.
		if !strings.Contains(out, "Managers: 3/3 reachable, quorum 2: healthy") || !strings.Contains(out, "  unreachable: ") {
			t.Errorf("stdout = %s", out)
		}
	})

	t.Run("not a status server", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.NotFoundHandler(), ReadHeaderTimeout: time.Second}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		code, _, errs := status(t, "--daemon", ln.Addr().String())
		if code != 1 || !strings.Contains(errs, "GET /status answered 404 Not Found") {
			t.Errorf("exit %d, stderr %q", code, errs)
		}
	})
}

// TestStatusHeldAndStopped: status names the nodes left alone within
// update.downGrace and the groups that stop launching, in text and JSON.
func TestStatusHeldAndStopped(t *testing.T) {
	for _, tc := range []struct {
		fixture string
		text    string
		check   func(statusDrift) bool
	}{
		{"down-manager-held", `(?m)^Held: +1 node\(s\) .*\n  node n-m2 \(managers, instance i-m2\): Down since 2026-05-01 11:58:00 UTC, replaced at 2026-05-01 12:03:00 UTC if still Down$`,
			func(d statusDrift) bool { return d.InSync && len(d.Held) == 1 && d.Held[0].Node == "n-m2" }},
		{"join-failures-stop-launching", `(?m)^Stopped: +group workers/web launches nothing: its new machines do not join \(kept: i-w7; the latest launched 2026-05-01 11:40:00 UTC\)$`,
			func(d statusDrift) bool {
				return len(d.LaunchStopped) == 1 && d.LaunchStopped[0].Group == "workers/web" && len(d.Held) == 0
			}},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			fx := "../../fixtures/plans/" + tc.fixture
			run := func(args ...string) string {
				var out, errb bytes.Buffer
				Main(append([]string{"status", "--repo", fx, "--observed", fx + "/observed.json"}, args...), strings.NewReader(""), &out, &errb)
				if errb.Len() > 0 {
					t.Fatalf("stderr %q", errb.String())
				}
				return out.String()
			}
			if out := run(); !regexp.MustCompile(tc.text).MatchString(out) {
				t.Errorf("output does not match %s:\n%s", tc.text, out)
			}
			var rep statusReport
			if err := json.Unmarshal([]byte(run("--format", "json")), &rep); err != nil {
				t.Fatal(err)
			}
			if !tc.check(rep.Drift) {
				t.Errorf("json drift = %+v", rep.Drift)
			}
		})
	}
}
