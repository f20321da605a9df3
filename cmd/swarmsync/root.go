package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"
)

// Exit codes (the CLI contract).
const (
	exitOK      = 0
	exitError   = 1
	exitChanges = 2
)

// exitCodeError carries an exit code other than 1 out of a command without
// printing anything more (the view has already said what happened).
type exitCodeError struct{ code int }

func (e exitCodeError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// app holds what every command shares: the streams and the version.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	logs           *logSwitch // see logOut
}

// commandFactories are the registered commands; each file adds its own in init.
var commandFactories []func(*app) *cobra.Command

func register(f func(*app) *cobra.Command) { commandFactories = append(commandFactories, f) }

func newRootCommand(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "swarmsync",
		Short: "Keep a Docker Swarm cluster's infrastructure in the shape a Git repository declares",
		Long: `swarmsync keeps a Docker Swarm cluster's infrastructure (managers, workers,
their machines and labels) in the shape that cluster specs in a Git repository
declare. It observes the cloud and the Swarm, computes an explicit, ordered
plan, and applies it only on the Swarm leader, never putting manager quorum
at risk.

Typical use:
  swarmsync validate --repo .           check the specs
  swarmsync plan --repo .               show what would change (run it in CI)
  swarmsync apply --repo .              apply after confirmation
  swarmsync apply --auto --repo URL     reconcile continuously (run on every manager)`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	for _, f := range commandFactories {
		root.AddCommand(f(a))
	}
	// cobra's completion command: swarmsync completion bash|zsh|fish|powershell.
	root.InitDefaultCompletionCmd()
	if c, _, err := root.Find([]string{"completion"}); err == nil && c != root {
		c.Args = cobra.ArbitraryArgs
		c.RunE = func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unknown shell %q: use bash, zsh, fish or powershell", args[0])
			}
			return cmd.Help()
		}
	}
	registerCompletions(root)
	return root
}

// Main runs the CLI and returns the process exit code. Errors are printed
// once, here, to stderr.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) (code int) {
	// Everything printed leaves under the printing rule (output.go).
	stdout, stderr = newSafeWriter(stdout), newSafeWriter(stderr)
	defer func() {
		// Exit code 2 means "changes": a panic must not reach the runtime,
		// which would exit 2.
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "Error: internal error (a bug in swarmsync, please report it): %s\n%s", escapeField(fmt.Sprint(r)), debug.Stack())
			code = exitError
		}
	}()
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	root := newRootCommand(a)
	root.SetArgs(args)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ec exitCodeError
	if errors.As(err, &ec) {
		return ec.code
	}
	renderError(stderr, err)
	return exitError
}
