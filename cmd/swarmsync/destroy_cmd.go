package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/swarmsync/swarmsync/providers"
)

// destroyOptions are the flags of `swarmsync destroy`.
type destroyOptions struct {
	src     sourceFlags
	cluster string
	yes     bool
}

func init() {
	register(func(a *app) *cobra.Command {
		var o destroyOptions
		cmd := &cobra.Command{
			Use:   "destroy --cluster NAME",
			Short: "Terminate every instance the cluster owns",
			Long: `destroy terminates every live instance tagged with the cluster (swarmsync:cluster),
after confirmation on a terminal (or --yes). Instances without the tag are
never touched. With the local provider this also removes the cluster's
bridge once its last machine is gone.`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return runDestroy(cmd.Context(), a, &o)
			},
		}
		o.src.register(cmd.Flags())
		cmd.Flags().StringVar(&o.cluster, "cluster", "", "the cluster to destroy (required)")
		cmd.Flags().BoolVar(&o.yes, "yes", false, "destroy without asking for confirmation")
		return cmd
	})
}

func runDestroy(ctx context.Context, a *app, o *destroyOptions) error {
	if o.cluster == "" {
		return errors.New("destroy needs --cluster NAME (the cluster whose instances are terminated)")
	}
	c, _, err := loadCluster(ctx, a, &o.src, o.cluster)
	if err != nil {
		return err
	}
	cloud, _, err := connect(ctx, a, c)
	if err != nil {
		return err
	}
	insts, err := cloud.Instances(ctx, c.Name)
	if err != nil {
		return fmt.Errorf("failed to list the instances of cluster %s: %w", c.Name, err)
	}
	var ids []string
	for _, in := range insts {
		if in.State != providers.StateTerminated && in.Cluster == c.Name {
			ids = append(ids, in.ID)
			fmt.Fprintf(a.stdout, "  %s  %-18s %s %s\n", in.ID, in.Group, in.State, in.PrivateIP)
		}
	}
	if len(ids) == 0 {
		fmt.Fprintf(a.stdout, "Cluster %s has no instances: nothing to destroy.\n", c.Name)
		return nil
	}
	if !o.yes {
		f, ok := a.stdin.(*os.File)
		if !ok || !isTerminal(f) {
			return errors.New("destroy needs confirmation, but stdin is not a terminal: run with --yes")
		}
		fmt.Fprintf(a.stdout, "Terminate these %d instance(s) of cluster %s? Only 'yes' will be accepted: ", len(ids), c.Name)
		line, err := bufio.NewReader(a.stdin).ReadString('\n')
		if err != nil && err != io.EOF {
			return fmt.Errorf("failed to read confirmation: %w", err)
		}
		if strings.TrimSpace(line) != "yes" {
			return errors.New("destroy cancelled: nothing was changed")
		}
	}
	if err := cloud.Terminate(ctx, c.Name, ids); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "Destroyed cluster %s: %d instance(s) terminated.\n", c.Name, len(ids))
	return nil
}
