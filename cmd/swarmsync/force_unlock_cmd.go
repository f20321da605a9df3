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

// forceUnlockOptions are the flags of `swarmsync force-unlock`.
type forceUnlockOptions struct {
	src     sourceFlags
	cluster string
	yes     bool
}

func init() {
	register(func(a *app) *cobra.Command {
		var o forceUnlockOptions
		cmd := &cobra.Command{
			Use:   "force-unlock LEASE_ID",
			Short: "Remove a stuck apply lease from the cluster's Swarm",
			Long: `force-unlock removes the apply lease with id LEASE_ID from the cluster's Swarm.

Every command that changes the cluster (apply, apply PLANFILE, the passes of
apply --auto, destroy) first takes the apply lease, recorded on the Swarm; a
second one refuses, naming the holder (host, pid, age) and the lease id. A
holder that dies leaves its lease until it expires (--lease-timeout, 60s by
default). Use force-unlock only when the holder is known to be gone and the
lease must go before it expires: removing the lease of a live holder lets two
appliers act at once (the holder stops at its next step, when its fence
finds the lease gone). It asks for confirmation on a terminal, or needs --yes.`,
			Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return runForceUnlock(cmd.Context(), a, &o, args[0])
			},
		}
		o.src.register(cmd.Flags())
		cmd.Flags().StringVar(&o.cluster, "cluster", "", "the cluster whose Swarm holds the lease (needed when the specs define several)")
		cmd.Flags().BoolVar(&o.yes, "yes", false, "remove the lease without asking for confirmation")
		return cmd
	})
}

func runForceUnlock(ctx context.Context, a *app, o *forceUnlockOptions, id string) error {
	c, _, err := loadCluster(ctx, a, &o.src, o.cluster)
	if err != nil {
		return err
	}
	_, sw, err := connect(ctx, a, c)
	if err != nil {
		return err
	}
	lr, ok := sw.(providers.Leaser)
	if !ok || !swarmExists(ctx, sw) {
		return fmt.Errorf("cluster %s has no Swarm to hold a lease: nothing to unlock", c.Name)
	}
	st, err := lr.ReadLease(ctx)
	if err != nil {
		return err
	}
	if !st.Held || st.Lease.ID != id {
		return fmt.Errorf("the Swarm of cluster %s holds no lease with id %s: %s; nothing was changed", c.Name, id, describeLease(st))
	}
	renderLease(a.stdout, c.Name, st)
	if !o.yes {
		f, ok := a.stdin.(*os.File)
		if !ok || !isTerminal(f) {
			return errors.New("force-unlock needs confirmation, but stdin is not a terminal: run with --yes")
		}
		renderForceUnlockPrompt(a.stdout)
		line, err := bufio.NewReader(a.stdin).ReadString('\n')
		if err != nil && err != io.EOF {
			return fmt.Errorf("failed to read confirmation: %w", err)
		}
		if strings.TrimSpace(line) != "yes" {
			return errors.New("force-unlock cancelled: nothing was changed")
		}
	}
	l, err := lr.BreakLease(ctx, id)
	if err != nil {
		return err
	}
	renderUnlocked(a.stdout, c.Name, l)
	return nil
}
