package sync_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/swarmsync/swarmsync/internal/gitserve"
	"github.com/swarmsync/swarmsync/sync"
)

// BenchmarkNoChangePoll measures what the daemon does every minute when
// nothing moved: one pull of main against a warm cache of a repository with
// 5,000 commits. Over the network that is one ref listing and no pack
// transfer (checked from the HTTP server's request log).
func BenchmarkNoChangePoll(b *testing.B) {
	base := b.TempDir()
	tip := gitserve.FastImport(b, filepath.Join(base, "specs.git"), 5000)
	h := gitserve.StartHTTP(b, base, "", "")
	d := gitserve.StartDaemon(b, base)
	for _, tc := range []struct{ name, repo string }{
		{"smart-http", h.URL + "specs.git"},
		{"git-daemon", d.URL + "specs.git"},
		{"local-bare", filepath.Join(base, "specs.git")},
	} {
		b.Run(tc.name, func(b *testing.B) {
			p := puller(b, filepath.Join(b.TempDir(), "cache"))
			src := sync.Source{Repo: tc.repo, Ref: "main", Path: "specs"}
			ctx := context.Background()
			if _, err := p.Pull(ctx, src); err != nil { // clone and materialise once
				b.Fatal(err)
			}
			h.Reset()
			for b.Loop() {
				res, err := p.Pull(ctx, src)
				if err != nil {
					b.Fatal(err)
				}
				if res.Fetched || string(res.Revision) != tip {
					b.Fatalf("poll: fetched=%v revision=%s, want no fetch at %s", res.Fetched, res.Revision, tip)
				}
			}
			if n := gitserve.Fetches(h.Requests()); n != 0 {
				b.Fatalf("%d pack transfers during no-change polls", n)
			}
		})
	}
}
