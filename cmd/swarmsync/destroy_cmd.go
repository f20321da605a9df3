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
	var live []providers.Instance
	var ids []string
	for _, in := range insts {
		if in.State != providers.StateTerminated && in.Cluster == c.Name {
			live = append(live, in)
			ids = append(ids, in.ID)
		}
	}
	renderDestroyList(a.stdout, c.Name, live)
	if len(ids) == 0 {
		return nil
	}
	if !o.yes {
		f, ok := a.stdin.(*os.File)
		if !ok || !isTerminal(f) {
			return errors.New("destroy needs confirmation, but stdin is not a terminal: run with --yes")
		}
		renderDestroyPrompt(a.stdout, c.Name, len(ids))
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
	renderDestroyed(a.stdout, c.Name, len(ids))
	return nil
}

// renderDestroyList shows the instances destroy is about to terminate, or
// that there are none.
func renderDestroyList(w io.Writer, cluster string, live []providers.Instance) {
	if len(live) == 0 {
		fmt.Fprintf(w, "Cluster %s has no instances: nothing to destroy.\n", cluster)
		return
	}
	for _, in := range live {
		escapeFields(&in)
		fmt.Fprintf(w, "  %s  %-18s %s %s\n", in.ID, in.Group, in.State, in.PrivateIP)
	}
}

// renderDestroyPrompt asks for the confirmation.
func renderDestroyPrompt(w io.Writer, cluster string, n int) {
	fmt.Fprintf(w, "Terminate these %d instance(s) of cluster %s? Only 'yes' will be accepted: ", n, cluster)
}

// renderDestroyed says what was terminated.
func renderDestroyed(w io.Writer, cluster string, n int) {
	fmt.Fprintf(w, "Destroyed cluster %s: %d instance(s) terminated.\n", cluster, n)
}
