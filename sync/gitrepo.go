package sync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

// repository is the narrow view of a Git repository the puller needs. It
// speaks only neutral types (strings, Commit); gitRepo implements it with
// go-git.
type repository interface {
	// has reports whether the object (commit or tag) is stored locally.
	has(hash string) bool
	// resolveLocal resolves a ref against the repository's own refs.
	resolveLocal(ref string) (string, error)
	// commit reads a commit (peeling annotated tags).
	commit(hash string) (Commit, error)
	// verify checks the commit's OpenPGP signature against an armored
	// keyring and returns the signer's fingerprint.
	verify(hash, armoredKeyRing string) (string, error)
	// writeTree writes the subtree at p of the commit into dst.
	writeTree(hash, p, dst string) error
	// uncommitted lists the files under p of the work tree that differ
	// from HEAD (none for a bare repository).
	uncommitted(p string) ([]string, error)
}

// remote is the narrow view of a remote repository.
type remote interface {
	// list returns the advertised refs (name → hash; symbolic refs are
	// resolved; annotated tags appear also as name^{} → commit).
	list(ctx context.Context) (map[string]string, error)
	// fetchInto fetches all branches and tags into the repository.
	fetchInto(ctx context.Context, r *gitRepo) error
}

var (
	_ repository = (*gitRepo)(nil)
	_ remote     = (*gitRemote)(nil)
)

// gitRepo is a go-git repository.
type gitRepo struct{ r *git.Repository }

func openRepo(dir string) (*gitRepo, error) {
	r, err := git.PlainOpenWithOptions(dir, &git.PlainOpenOptions{EnableDotGitCommonDir: true})
	if err != nil {
		return nil, err
	}
	return &gitRepo{r: r}, nil
}

func initBare(dir string) (*gitRepo, error) {
	r, err := git.PlainInit(dir, true)
	if err != nil {
		return nil, err
	}
	return &gitRepo{r: r}, nil
}

func (g *gitRepo) has(hash string) bool {
	return g.r.Storer.HasEncodedObject(plumbing.NewHash(hash)) == nil
}

// refNotFound is returned by resolveLocal when nothing matches.
var errRefNotFound = errors.New("ref not found")

func (g *gitRepo) resolveLocal(ref string) (string, error) {
	if ref == "" {
		h, err := g.r.Head()
		if err != nil {
			if errors.Is(err, plumbing.ErrReferenceNotFound) {
				return "", fmt.Errorf("HEAD has no commits: %w", errRefNotFound)
			}
			return "", err
		}
		return h.Hash().String(), nil
	}
	if hashPattern.MatchString(ref) {
		if !g.has(ref) {
			return "", errRefNotFound
		}
		return ref, nil
	}
	for _, name := range candidateRefs(ref) {
		if r, err := g.r.Reference(plumbing.ReferenceName(name), true); err == nil {
			return r.Hash().String(), nil
		}
	}
	// Short hashes (checkRef refuses other revision syntax).
	if h, err := g.r.ResolveRevision(plumbing.Revision(ref)); err == nil {
		return h.String(), nil
	}
	return "", errRefNotFound
}

// maxUncommitted bounds the list of uncommitted files (the rest is
// counted).
const maxUncommitted = 20

// fileStates name go-git's status codes.
var fileStates = map[git.StatusCode]string{
	git.Untracked:          "untracked",
	git.Modified:           "modified",
	git.Added:              "added",
	git.Deleted:            "deleted",
	git.Renamed:            "renamed",
	git.Copied:             "copied",
	git.UpdatedButUnmerged: "unmerged",
}

func (g *gitRepo) uncommitted(p string) ([]string, error) {
	wt, err := g.r.Worktree()
	if errors.Is(err, git.ErrIsBareRepository) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	st, err := wt.Status()
	if err != nil {
		return nil, err
	}
	var out []string
	for name, fs := range st {
		if p != "" && name != p && !strings.HasPrefix(name, p+"/") {
			continue
		}
		code := fs.Worktree
		if code == git.Unmodified {
			code = fs.Staging
		}
		if code == git.Unmodified {
			continue
		}
		state := fileStates[code]
		if state == "" {
			state = "changed"
		}
		out = append(out, name+" ("+state+")")
	}
	slices.Sort(out)
	if len(out) > maxUncommitted {
		out = append(out[:maxUncommitted], fmt.Sprintf("and %d more", len(out)-maxUncommitted))
	}
	return out, nil
}

// candidateRefs are the full ref names a short ref may mean, in order.
func candidateRefs(ref string) []string {
	if strings.HasPrefix(ref, "refs/") {
		return []string{ref}
	}
	return []string{"refs/heads/" + ref, "refs/tags/" + ref, "refs/remotes/origin/" + ref}
}

func (g *gitRepo) commitObject(hash string) (*object.Commit, error) {
	h := plumbing.NewHash(hash)
	obj, err := g.r.Storer.EncodedObject(plumbing.AnyObject, h)
	if err != nil {
		return nil, err
	}
	for range 10 { // peel tag chains
		switch obj.Type() {
		case plumbing.CommitObject:
			return object.DecodeCommit(g.r.Storer, obj)
		case plumbing.TagObject:
			t, err := object.DecodeTag(g.r.Storer, obj)
			if err != nil {
				return nil, err
			}
			if obj, err = g.r.Storer.EncodedObject(plumbing.AnyObject, t.Target); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("object %s is a %s, not a commit", hash, obj.Type())
		}
	}
	return nil, fmt.Errorf("tag chain at %s is too long", hash)
}

func (g *gitRepo) commit(hash string) (Commit, error) {
	c, err := g.commitObject(hash)
	if err != nil {
		return Commit{}, err
	}
	subject, _, _ := strings.Cut(c.Message, "\n")
	return Commit{
		Hash:    c.Hash.String(),
		Author:  fmt.Sprintf("%s <%s>", c.Author.Name, c.Author.Email),
		Time:    c.Committer.When,
		Subject: subject,
		Signed:  c.PGPSignature != "",
	}, nil
}

// errUnsigned is returned by verify for a commit without a signature.
var errUnsigned = errors.New("commit is not signed")

func (g *gitRepo) verify(hash, keyring string) (string, error) {
	c, err := g.commitObject(hash)
	if err != nil {
		return "", err
	}
	if c.PGPSignature == "" {
		return "", errUnsigned
	}
	e, err := c.Verify(keyring)
	if err != nil {
		return "", err
	}
	return strings.ToUpper(fmt.Sprintf("%x", e.PrimaryKey.Fingerprint)), nil
}

// errNotDir is returned by writeTree when the path names a file.
var errNotDir = errors.New("not a directory")

func (g *gitRepo) writeTree(hash, p, dst string) error {
	c, err := g.commitObject(hash)
	if err != nil {
		return err
	}
	tree, err := c.Tree()
	if err != nil {
		return err
	}
	if p != "" {
		e, err := tree.FindEntry(p)
		if err != nil {
			return err // object.ErrEntryNotFound / ErrDirectoryNotFound
		}
		if e.Mode != filemode.Dir {
			return errNotDir
		}
		if tree, err = tree.Tree(p); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	return tree.Files().ForEach(func(f *object.File) error {
		var perm os.FileMode
		switch f.Mode {
		case filemode.Regular, filemode.Deprecated:
			perm = 0o644
		case filemode.Executable:
			perm = 0o755
		default: // symlinks and submodules are not materialised
			return nil
		}
		target := filepath.Join(dst, filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		rd, err := f.Reader()
		if err != nil {
			return err
		}
		defer rd.Close()
		out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, rd); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}

// gitRemote is a go-git remote that is never written to any config (so a
// URL never lands on disk).
type gitRemote struct {
	url  string
	auth transport.AuthMethod
}

func (g *gitRemote) remote(r *git.Repository) *git.Remote {
	cfg := &config.RemoteConfig{Name: "origin", URLs: []string{g.url}}
	if r == nil {
		return git.NewRemote(nil, cfg)
	}
	return git.NewRemote(r.Storer, cfg)
}

func (g *gitRemote) list(ctx context.Context) (map[string]string, error) {
	refs, err := g.remote(nil).ListContext(ctx, &git.ListOptions{Auth: g.auth, PeelingOption: git.AppendPeeled})
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(refs))
	var symbolic []*plumbing.Reference
	for _, r := range refs {
		if r.Type() == plumbing.SymbolicReference {
			symbolic = append(symbolic, r)
			continue
		}
		out[r.Name().String()] = r.Hash().String()
	}
	for _, r := range symbolic {
		if h, ok := out[r.Target().String()]; ok {
			out[r.Name().String()] = h
		}
	}
	return out, nil
}

func (g *gitRemote) fetchInto(ctx context.Context, r *gitRepo) error {
	err := g.remote(r.r).FetchContext(ctx, &git.FetchOptions{
		RefSpecs: []config.RefSpec{"+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"},
		Auth:     g.auth,
		Tags:     git.NoTags,
		Force:    true,
	})
	if errors.Is(err, git.NoErrAlreadyUpToDate) {
		return nil
	}
	return err
}

// isMissingPath reports whether a writeTree error means the path is absent.
func isMissingPath(err error) bool {
	return errors.Is(err, object.ErrEntryNotFound) || errors.Is(err, object.ErrDirectoryNotFound) ||
		errors.Is(err, object.ErrFileNotFound) || errors.Is(err, errNotDir)
}
