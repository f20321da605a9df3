package local

import (
	"context"
	"fmt"
	"os"
)

// Forget drops what the cloud remembers of a cluster whose instances are
// all terminated: their records and the cluster's launch records. A cloud
// lists terminated instances for a while (RetainTerminated); after a
// destroy, a local cluster leaves nothing behind. It refuses, changing
// nothing, while an instance of the cluster is not terminated, and returns
// how many records it dropped.
func (c *Cloud) Forget(ctx context.Context, cluster string) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	lk, err := c.st.lock()
	if err != nil {
		return 0, err
	}
	defer lk.Unlock()
	if err := c.resume(ctx); err != nil {
		return 0, err
	}
	recs, err := c.st.records()
	if err != nil {
		return 0, err
	}
	var gone []string
	for _, r := range recs {
		if r.Cluster != cluster {
			continue
		}
		if r.TerminatedAt == nil {
			return 0, fmt.Errorf("failed to forget cluster %s: instance %s is %s, not terminated", cluster, r.ID, r.State)
		}
		gone = append(gone, r.ID)
	}
	for _, id := range gone {
		if err := os.RemoveAll(c.st.instanceDir(id)); err != nil {
			return 0, fmt.Errorf("failed to forget instance %s: %w", id, err)
		}
	}
	if err := os.RemoveAll(c.st.launchesDir(cluster)); err != nil {
		return 0, fmt.Errorf("failed to forget the launches of cluster %s: %w", cluster, err)
	}
	return len(gone), nil
}
