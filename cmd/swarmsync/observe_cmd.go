package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/swarmsync/swarmsync/plan"
)

// observeOptions are the flags of `swarmsync observe`.
type observeOptions struct {
	src     sourceFlags
	cluster string
	out     string
}

func init() {
	register(func(a *app) *cobra.Command {
		var o observeOptions
		cmd := &cobra.Command{
			Use:   "observe",
			Short: "Save one observation of a cluster (instances, nodes, leader) as JSON",
			Long: `observe lists the cluster's owned instances and its Swarm nodes once and
prints the snapshot as JSON (or saves it with --out). Feed it back with
'swarmsync plan --observed FILE' to plan against exactly this state.`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error { return runObserve(cmd, a, &o) },
		}
		o.src.register(cmd.Flags())
		cmd.Flags().StringVar(&o.cluster, "cluster", "", "cluster to observe (may be omitted when the specs define one cluster)")
		cmd.Flags().StringVar(&o.out, "out", "", "save the observation to this file instead of printing it")
		return cmd
	})
}

func runObserve(cmd *cobra.Command, a *app, o *observeOptions) error {
	ctx := cmd.Context()
	c, _, err := loadCluster(ctx, a, &o.src, o.cluster)
	if err != nil {
		return err
	}
	obs, err := observation(ctx, a, c, "")
	if err != nil {
		return err
	}
	js, err := plan.MarshalObserved(obs)
	if err != nil {
		return err
	}
	if o.out == "" {
		_, err = exact(a.stdout).Write(js)
		return err
	}
	if err := writeFileAtomic(o.out, js); err != nil {
		return fmt.Errorf("failed to save observation: %w", err)
	}
	fmt.Fprintf(a.stderr, "Saved the observation of cluster %s (%d instances, %d nodes, fingerprint %.12s) to %s\n",
		c.Name, len(obs.Instances), len(obs.Swarm.Nodes), obs.Fingerprint(), o.out)
	return nil
}
