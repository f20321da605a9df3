package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"
)

// sourceFlags are the flags every command uses to find the specs.
type sourceFlags struct {
	Repo     string
	Ref      string
	Path     string
	CacheDir string
}

func (s *sourceFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&s.Repo, "repo", ".", "Git URL (https, ssh, file) or local path holding the specs")
	fs.StringVar(&s.Ref, "ref", "", "branch, tag or commit to use (default: the repository's HEAD)")
	fs.StringVar(&s.Path, "path", "", "sub-directory of the repository that holds the specs")
	fs.StringVar(&s.CacheDir, "cache-dir", "", "where clones are cached (default: the user cache directory)")
}

// checkout is a resolved source: the directory holding the spec files and
// the revision they came from.
type checkout struct {
	Dir    string // the spec directory (repository root joined with --path)
	Repo   string // the repository, credentials stripped
	Ref    string
	Commit string // resolved commit, or "dir:<digest>" for a plain directory
	Path   string
}

// checkout resolves the source flags to a directory of spec files.
func (s *sourceFlags) checkout(ctx context.Context) (*checkout, error) {
	dir := filepath.Join(s.Repo, s.Path)
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("spec directory %s: %w", dir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("spec directory %s is not a directory", dir)
	}
	return &checkout{Dir: dir, Repo: s.Repo, Ref: s.Ref, Path: s.Path}, nil
}
