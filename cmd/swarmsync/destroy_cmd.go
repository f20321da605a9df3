package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/swarmsync/swarmsync/apply"
	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/schema"
)

// destroyOptions are the flags of `swarmsync destroy`.
type destroyOptions struct {
	src     sourceFlags
	cluster string
	yes     bool
	lease   leaseFlags
	// leaseOpts are the lease's options, resolved from the flags.
	leaseOpts apply.LeaseOptions
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
bridge once its last machine is gone. While the cluster's Swarm exists,
destroy holds its apply lease (see apply): it refuses while another apply
holds it.`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				var err error
				if o.leaseOpts, err = o.lease.options(cmd.Flags(), "destroy", warnLogger(a)); err != nil {
					return err
				}
				return runDestroy(cmd.Context(), a, &o)
			},
		}
		o.src.register(cmd.Flags())
		cmd.Flags().StringVar(&o.cluster, "cluster", "", "the cluster to destroy (required)")
		cmd.Flags().BoolVar(&o.yes, "yes", false, "destroy without asking for confirmation")
		o.lease.register(cmd.Flags())
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
	cloud, sw, err := connect(ctx, a, c)
	if err != nil {
		return err
	}
	lease, err := takeLease(ctx, sw, o.leaseOpts)
	if err != nil {
		return err
	}
	err = destroyUnderLease(ctx, a, o, c, cloud, lease)
	if lease.Held() {
		// The Swarm may be gone with its machines: then so is the lease.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = lease.Release(rctx)
	}
	return err
}

func destroyUnderLease(ctx context.Context, a *app, o *destroyOptions, c schema.Cluster, cloud providers.Cloud, lease *apply.Lease) error {
	cluster := c.Name
	insts, err := cloud.Instances(ctx, cluster)
	if err != nil {
		return fmt.Errorf("failed to list the instances of cluster %s: %w", cluster, err)
	}
	var live []providers.Instance
	var ids []string
	for _, in := range insts {
		if in.State != providers.StateTerminated && in.Cluster == cluster {
			live = append(live, in)
			ids = append(ids, in.ID)
		}
	}
	envRes, err := ownedEnvironment(ctx, c, cloud)
	if err != nil {
		return err
	}
	renderDestroyList(a.stdout, cluster, live, envRes)
	if len(ids) == 0 && envRes.empty() {
		return forget(ctx, cloud, cluster)
	}
	if !o.yes {
		f, ok := a.stdin.(*os.File)
		if !ok || !isTerminal(f) {
			return errors.New("destroy needs confirmation, but stdin is not a terminal: run with --yes")
		}
		renderDestroyPrompt(a.stdout, cluster, len(ids))
		line, err := bufio.NewReader(a.stdin).ReadString('\n')
		if err != nil && err != io.EOF {
			return fmt.Errorf("failed to read confirmation: %w", err)
		}
		if strings.TrimSpace(line) != "yes" {
			return errors.New("destroy cancelled: nothing was changed")
		}
	}
	// The confirmation may have taken long: the lease must still be ours.
	if lease.Held() {
		if err := lease.Check(ctx); err != nil {
			return fmt.Errorf("refusing to destroy, nothing was changed: %w", err)
		}
	}
	if len(ids) > 0 {
		if err := cloud.Terminate(ctx, cluster, ids); err != nil {
			return err
		}
	}
	if err := destroyEnvironment(ctx, c, envRes); err != nil {
		return err
	}
	renderDestroyed(a.stdout, cluster, len(ids), envRes)
	return forget(ctx, cloud, cluster)
}

// forgetter is a cloud that can drop its records of a cluster's terminated
// instances (the local provider: a destroyed local cluster leaves nothing
// behind, and later plans do not list its machines).
type forgetter interface {
	Forget(ctx context.Context, cluster string) (int, error)
}

func forget(ctx context.Context, cloud providers.Cloud, cluster string) error {
	f, ok := cloud.(forgetter)
	if !ok {
		return nil
	}
	_, err := f.Forget(ctx, cluster)
	return err
}

// environmentResources are what swarmsync created around a cluster: its
// managed security group and its listeners (with their target groups).
type environmentResources struct {
	env           providers.Environment
	securityGroup string
	listeners     []providers.Listener
}

func (r environmentResources) empty() bool { return r.securityGroup == "" && len(r.listeners) == 0 }

// ownedEnvironment lists what destroy removes besides instances.
func ownedEnvironment(ctx context.Context, c schema.Cluster, cloud providers.Cloud) (environmentResources, error) {
	env, ok := cloud.(providers.Environment)
	if !ok || c.Provider.AWS == nil {
		return environmentResources{}, nil
	}
	r := environmentResources{env: env}
	var err error
	if r.securityGroup, err = env.ManagedSecurityGroup(ctx, c.Name); err != nil {
		return r, err
	}
	if c.LoadBalancer != nil {
		if r.listeners, err = env.OwnedListeners(ctx, c.Name, c.LoadBalancer.ARN); err != nil {
			return r, err
		}
	}
	return r, nil
}

// sgDeleteTimeout bounds the wait for terminated instances to release the
// managed security group.
const sgDeleteTimeout = 10 * time.Minute

// destroyEnvironment deletes the listeners swarmsync created (and their
// target groups), then the managed security group once no instance uses
// it any more.
func destroyEnvironment(ctx context.Context, c schema.Cluster, r environmentResources) error {
	for _, l := range r.listeners {
		if err := r.env.DeleteListener(ctx, c.Name, l.ARN, l.TargetGroup); err != nil {
			return err
		}
	}
	if r.securityGroup == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, sgDeleteTimeout)
	defer cancel()
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		err := r.env.DeleteManagedSecurityGroup(ctx, c.Name)
		if !errors.Is(err, providers.ErrInUse) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the instances are terminated, but %w", err)
		case <-tick.C:
		}
	}
}

// renderDestroyList shows the instances destroy is about to terminate, or
// that there are none.
func renderDestroyList(w io.Writer, cluster string, live []providers.Instance, r environmentResources) {
	if len(live) == 0 && r.empty() {
		fmt.Fprintf(w, "Cluster %s has no instances: nothing to destroy.\n", cluster)
		return
	}
	for _, in := range live {
		escapeFields(&in)
		fmt.Fprintf(w, "  %s  %-18s %s %s\n", in.ID, in.Group, in.State, in.PrivateIP)
	}
	for _, l := range r.listeners {
		escapeFields(&l)
		fmt.Fprintf(w, "  listener %s %d (and its target group), created by swarmsync\n", l.Protocol, l.Port)
	}
	if r.securityGroup != "" {
		fmt.Fprintf(w, "  security group %s, managed by swarmsync\n", escapeField(r.securityGroup))
	}
}

// renderDestroyPrompt asks for the confirmation.
func renderDestroyPrompt(w io.Writer, cluster string, n int) {
	fmt.Fprintf(w, "Terminate %s of cluster %s? Only 'yes' will be accepted: ", plural(n, "this instance", "these %d instances"), cluster)
}

// renderDestroyed says what was terminated.
func renderDestroyed(w io.Writer, cluster string, n int, r environmentResources) {
	fmt.Fprintf(w, "Destroyed cluster %s: %s terminated", cluster, count(n, "instance"))
	if len(r.listeners) > 0 {
		fmt.Fprintf(w, ", %s deleted", count(len(r.listeners), "listener"))
	}
	if r.securityGroup != "" {
		fmt.Fprintf(w, ", security group %s deleted", escapeField(r.securityGroup))
	}
	fmt.Fprintln(w, ".")
}
