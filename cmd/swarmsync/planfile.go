package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/swarmsync/swarmsync/plan"
	"github.com/swarmsync/swarmsync/schema"
)

// loadPlanSource loads the cluster of the saved plan p from the spec at the
// plan's source revision: its repository and sub-path (unless --repo or
// --path name others), at its commit. A plain directory has no history: its
// content must still be the plan's revision. A plan made from a ref (a
// branch, or HEAD) whose spec has changed since is stale: it would undo what
// the spec now in force says (and apply --auto would undo it again).
func loadPlanSource(ctx context.Context, a *app, flags *sourceFlags, fs *pflag.FlagSet, p *plan.Plan) (schema.Cluster, plan.Source, error) {
	if fs.Changed("ref") {
		return schema.Cluster{}, plan.Source{}, errors.New("--ref cannot be used with a plan file: the plan names the revision it was made from")
	}
	sf := *flags
	if !fs.Changed("repo") {
		sf.Repo = p.Source.Repo
	}
	if !fs.Changed("path") {
		sf.Path = p.Source.Path
	}
	plainDir := strings.HasPrefix(p.Source.Commit, "dir:")
	pinned := sf
	if !plainDir {
		pinned.Ref = p.Source.Commit
	}
	c, src, err := loadCluster(ctx, a, &pinned, p.Cluster)
	if err != nil {
		return c, src, fmt.Errorf("failed to load the spec the plan was made from (%s at %s): %w", sf.Repo, p.Source.Commit, err)
	}
	if plainDir {
		if src.Commit != p.Source.Commit {
			return c, src, &plan.MismatchError{Kind: plan.MismatchStale, Detail: fmt.Sprintf("the specs in %s changed since the plan was made (revision %s, the plan's %s)", src.Repo, src.Commit, p.Source.Commit)}
		}
		return c, src, nil
	}
	if p.Source.Ref == p.Source.Commit {
		return c, src, nil // made at a pinned commit: nothing moves
	}
	current := sf
	current.Ref = p.Source.Ref
	_, now, err := loadCluster(ctx, a, &current, p.Cluster)
	if err != nil {
		return c, src, fmt.Errorf("failed to load the spec at %s to compare with the plan's: %w", refName(p.Source.Ref), err)
	}
	if now.SpecDigest != src.SpecDigest {
		return c, src, &plan.MismatchError{Kind: plan.MismatchStale, Detail: fmt.Sprintf("the spec at %s changed since the plan was made (now revision %s, the plan's %s)", refName(p.Source.Ref), now.Commit, p.Source.Commit)}
	}
	return c, src, nil
}

func refName(ref string) string {
	if ref == "" {
		return "HEAD"
	}
	return ref
}
