package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/swarmsync/swarmsync/schema"
)

// The CUE evaluation budget. CUE is a language: a few lines of
// comprehension can run for minutes or take all memory, and the evaluator
// can be neither cancelled nor bounded from inside. So CUE specs are first
// evaluated in a child process (this binary, the hidden command below)
// under a time and memory budget, killed when it overruns it or when the
// command is interrupted; only specs that fitted are then loaded here, in
// process (the same work again, now known to be bounded). YAML specs are
// bounded by the loader's own size and alias budgets and skip the child.
const (
	envSpecTimeout = "SWARMSYNC_SPEC_TIMEOUT" // a Go duration; default 10s
	envSpecMemory  = "SWARMSYNC_SPEC_MEMORY"  // MiB of resident memory; default 1024

	defaultSpecTimeout = 10 * time.Second
	defaultSpecMemory  = 1024

	evaluateCommand = "__evaluate-specs"
)

func init() {
	register(func(*app) *cobra.Command {
		return &cobra.Command{
			Use:    evaluateCommand + " DIR",
			Hidden: true,
			Args:   cobra.ExactArgs(1),
			RunE: func(_ *cobra.Command, args []string) error {
				// What is wrong with the specs is the parent's to say.
				_, _ = schema.LoadDir(args[0])
				return nil
			},
		}
	})
}

// specBudget reads the budget from the environment.
func specBudget() (time.Duration, int64, error) {
	timeout, mem := defaultSpecTimeout, int64(defaultSpecMemory)
	if v := os.Getenv(envSpecTimeout); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return 0, 0, fmt.Errorf("%s=%q: expected a positive duration like 10s", envSpecTimeout, v)
		}
		timeout = d
	}
	if v := os.Getenv(envSpecMemory); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 64 {
			return 0, 0, fmt.Errorf("%s=%q: expected a number of MiB, at least 64", envSpecMemory, v)
		}
		mem = n
	}
	return timeout, mem, nil
}

// evaluateWithinBudget evaluates the CUE specs in dir in a child process
// under the budget. It returns nil when there are none or they fitted.
func evaluateWithinBudget(ctx context.Context, dir string) error {
	cues, _ := filepath.Glob(filepath.Join(dir, "*.cue"))
	if len(cues) == 0 {
		return ctx.Err()
	}
	timeout, mem, err := specBudget()
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("failed to find this program to evaluate the specs: %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(cctx, exe, evaluateCommand, dir)
	cmd.Args[0] = "swarmsync"
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("failed to start the spec evaluation: %w", err)
	}
	var overMemory atomic.Bool
	done := make(chan struct{})
	go func() {
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-done:
				return
			case <-tk.C:
				if residentMiB(cmd.Process.Pid) > mem {
					overMemory.Store(true)
					_ = cmd.Process.Kill()
					return
				}
			}
		}
	}()
	err = cmd.Wait()
	close(done)
	switch {
	case overMemory.Load():
		return fmt.Errorf("evaluating the CUE specs took more than %d MiB of memory, and was stopped; nothing was changed: "+
			"simplify the specs (comprehensions, large lists), or raise %s", mem, envSpecMemory)
	case ctx.Err() != nil:
		return fmt.Errorf("interrupted while evaluating the CUE specs; nothing was changed: %w", ctx.Err())
	case errors.Is(cctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("evaluating the CUE specs took longer than %s, and was stopped; nothing was changed: "+
			"simplify the specs (comprehensions, large lists), or raise %s", timeout, envSpecTimeout)
	case err != nil:
		return fmt.Errorf("evaluating the CUE specs failed (%v); nothing was changed", err)
	}
	return nil
}

// residentMiB is a process's resident memory in MiB (0 when unknown).
func residentMiB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/statm", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize()) >> 20
}

// maxInputFile bounds an observation or plan file: one of the largest
// cluster (2000 nodes) is a few megabytes.
const maxInputFile = 32 << 20

// readInput reads a JSON input file (what names it in errors), refusing
// one larger than maxInputFile without reading it whole.
func readInput(path, what string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read %s: %w", what, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxInputFile+1))
	if err != nil {
		return nil, fmt.Errorf("failed to read %s %s: %w", what, path, err)
	}
	if len(b) > maxInputFile {
		return nil, fmt.Errorf("%s %s is larger than %d MiB: not one swarmsync wrote", what, path, maxInputFile>>20)
	}
	return b, nil
}
