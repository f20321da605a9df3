package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/swarmsync/swarmsync/plan"
)

// planFormats are the formats `swarmsync plan` prints.
var planFormats = []string{"text", "json", "markdown", "dot"}

// planOptions are the flags of `swarmsync plan`.
type planOptions struct {
	src      sourceFlags
	cluster  string
	observed string
	format   string
	out      string
	detailed bool
}

func init() {
	register(func(a *app) *cobra.Command {
		var o planOptions
		cmd := &cobra.Command{
			Use:   "plan",
			Short: "Show the ordered steps that would bring a cluster to its spec",
			Long: `plan loads the cluster spec, observes the cloud and the Swarm once (or reads a
saved observation with --observed), and prints the explicit, ordered,
quorum-safe plan that apply would execute. It changes nothing.

Exit codes: 0 no changes; 1 error (including a plan refused by the spec's
safety limits); with --detailed-exitcode, 2 when there are changes.`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error { return runPlan(cmd, a, &o) },
		}
		o.src.register(cmd.Flags())
		cmd.Flags().StringVar(&o.cluster, "cluster", "", "cluster to plan (may be omitted when the specs define one cluster)")
		cmd.Flags().StringVar(&o.observed, "observed", "", "plan against this saved observation (from 'swarmsync observe') instead of observing")
		cmd.Flags().StringVar(&o.format, "format", "text", "output format: text, json, markdown (for pull-request comments) or dot (the step graph, for Graphviz)")
		cmd.Flags().StringVar(&o.out, "out", "", "also save the plan JSON to this file (for 'swarmsync apply PLANFILE')")
		cmd.Flags().BoolVar(&o.detailed, "detailed-exitcode", false, "exit 2 when the plan has changes, 0 when it has none")
		return cmd
	})
}

func runPlan(cmd *cobra.Command, a *app, o *planOptions) error {
	render := map[string]func([]byte) error{
		"json":     func(js []byte) error { _, err := exact(a.stdout).Write(js); return err },
		"text":     func(js []byte) error { return renderPlanText(a.stdout, js) },
		"markdown": func(js []byte) error { return renderPlanMarkdown(a.stdout, js) },
		"dot":      func(js []byte) error { return renderPlanDot(a.stdout, js) },
	}[o.format]
	if render == nil {
		return fmt.Errorf("unknown --format %q: use text, json, markdown or dot", o.format)
	}
	ctx := cmd.Context()
	c, src, err := loadCluster(ctx, a, &o.src, o.cluster)
	if err != nil {
		return err
	}
	obs, err := observation(ctx, a, c, o.observed)
	if err != nil {
		return err
	}
	p, err := plan.Compute(c, obs, src)
	if err != nil {
		return err
	}
	js, err := plan.MarshalPlan(p)
	if err != nil {
		return err
	}
	if o.out != "" {
		if err := writeFileAtomic(o.out, js); err != nil {
			return fmt.Errorf("failed to save plan: %w", err)
		}
	}
	if err := render(js); err != nil {
		return err
	}
	if o.detailed && len(p.Steps) > 0 {
		return exitCodeError{exitChanges}
	}
	return nil
}

// writeFileAtomic writes data to path through a temporary file in the same
// directory, so a reader never sees half a file.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
