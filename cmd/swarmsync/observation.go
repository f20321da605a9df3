package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/swarmsync/swarmsync/observe"
	"github.com/swarmsync/swarmsync/plan"
	"github.com/swarmsync/swarmsync/schema"
)

// observation returns what plan and status reason about: the saved
// observation in file when one is given (it must be of cluster c), else one
// fresh observation through the cluster's providers.
func observation(ctx context.Context, a *app, c schema.Cluster, file string) (plan.Observed, error) {
	if file != "" {
		return readObserved(file, c.Name)
	}
	cloud, sw, err := connect(ctx, a, c)
	if err != nil {
		return plan.Observed{}, err
	}
	return observe.TakeFor(ctx, cloud, sw, c, time.Now())
}

// readObserved reads a saved observation of cluster.
func readObserved(path, cluster string) (plan.Observed, error) {
	b, err := readInput(path, "observation")
	if err != nil {
		return plan.Observed{}, err
	}
	obs, err := plan.UnmarshalObserved(b)
	if err != nil {
		return plan.Observed{}, prefixEach(path, err)
	}
	if obs.Cluster != cluster {
		return plan.Observed{}, fmt.Errorf("%s is an observation of cluster %q, not %q: pass --cluster %s or another --observed file", path, obs.Cluster, cluster, obs.Cluster)
	}
	return obs, nil
}

// prefixEach prefixes err with "path: ", each of its errors when it joins
// several (one per line).
func prefixEach(path string, err error) error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return fmt.Errorf("%s: %w", path, err)
	}
	var errs []error
	for _, e := range j.Unwrap() {
		errs = append(errs, fmt.Errorf("%s: %w", path, e))
	}
	return errors.Join(errs...)
}
