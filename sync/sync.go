package sync

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/gofrs/flock"
)

// Revision identifies the content a Result came from: a full Git commit
// hash, or "dir:sha256:<hex>" (the digest of the files) for a plain
// directory.
type Revision string

// Commit describes a resolved Git commit.
type Commit struct {
	Hash    string    // full hex hash
	Author  string    // "Name <email>"
	Time    time.Time // committer time
	Subject string    // first line of the message
	Signed  bool      // carries an OpenPGP signature (verified or not)
	Signer  string    // fingerprint of the trusted key that signed it, when verified
}

// Result is a resolved source: a directory holding the spec files and the
// revision they came from.
type Result struct {
	Dir      string   // the spec directory (the Path subtree of the revision)
	Repo     string   // the repository, credentials stripped
	Ref      string   // the ref as asked for ("" = HEAD)
	Path     string   // the sub-path, clean, slash-separated ("" = root)
	Revision Revision // commit hash or dir:sha256:…
	Commit   *Commit  // nil for a plain directory
	// Uncommitted lists the files under Path of a local work tree read at
	// its HEAD that differ from HEAD ("specs/a.yaml (modified)"), sorted:
	// those edits are not in Dir. Empty for other sources and for an
	// explicit ref.
	Uncommitted []string
	// Fetched reports that objects were transferred from the remote on
	// this pull; false when the cache already held the commit (including
	// the cheap no-change poll).
	Fetched bool
}

// Options configure a Puller.
type Options struct {
	// CacheDir holds bare clones and materialised trees; empty means
	// DefaultCacheDir().
	CacheDir string
	// Auth holds remote credentials.
	Auth Auth
	// TrustedKeys is an armored OpenPGP keyring; when set, the resolved
	// commit must carry a good signature from one of its keys.
	TrustedKeys []byte
	// Logger receives debug/info records (credential-free); nil discards.
	Logger *slog.Logger
	// Timeout bounds each network operation of a pull (listing the
	// remote's refs, fetching); 0 means DefaultTimeout.
	Timeout time.Duration
}

// DefaultTimeout bounds each network operation of a pull by default: a
// fetch of a spec repository takes seconds; a server that does not answer
// must not hold a pass forever.
const DefaultTimeout = 2 * time.Minute

// Puller resolves sources. It is safe for concurrent use, also across
// processes sharing one cache directory.
type Puller struct {
	opts    Options
	keyring string
	log     *slog.Logger
}

// DefaultCacheDir is the cache under the user cache directory, or under the
// temporary directory when there is none (no home directory). It creates
// nothing.
func DefaultCacheDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		for _, c := range []string{d, filepath.Dir(d)} {
			if st, err := os.Stat(c); err == nil && st.IsDir() {
				return filepath.Join(d, "swarmsync")
			}
		}
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("swarmsync-cache-%d", os.Getuid()))
}

// New returns a Puller. It fails when the trusted keyring does not parse.
func New(opts Options) (*Puller, error) {
	if opts.CacheDir == "" {
		opts.CacheDir = DefaultCacheDir()
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	p := &Puller{opts: opts, log: log}
	if len(opts.TrustedKeys) > 0 {
		keys, err := openpgp.ReadArmoredKeyRing(strings.NewReader(string(opts.TrustedKeys)))
		if err != nil {
			return nil, &Error{Kind: ErrInvalidSource, msg: fmt.Sprintf("failed to read the trusted keyring: %v; it must hold armored OpenPGP public keys (gpg --armor --export)", err)}
		}
		if len(keys) == 0 {
			return nil, &Error{Kind: ErrInvalidSource, msg: "the trusted keyring holds no keys"}
		}
		p.keyring = string(opts.TrustedKeys)
	}
	return p, nil
}

// Pull resolves src: for a remote it brings the cache up to date (cloning,
// or fetching only when the remote has moved past what the cache holds),
// then materialises the Path subtree of the resolved commit, verifying its
// signature when trusted keys are configured.
func (p *Puller) Pull(ctx context.Context, src Source) (*Result, error) {
	loc, err := parseLocation(src.Repo)
	if err != nil {
		return nil, err
	}
	sub, err := cleanPath(src.Path)
	if err != nil {
		return nil, invalid(loc.display, "invalid --path: %v", err)
	}
	if msg := checkRef(src.Ref); msg != "" {
		return nil, invalid(loc.display, "invalid --ref %q: %s; use a branch, a tag, a full ref name (refs/...) or a commit hash", src.Ref, msg)
	}
	res := &Result{Repo: loc.display, Ref: src.Ref, Path: sub}
	switch loc.kind {
	case kindPlainDir:
		return p.pullDir(loc, src, res)
	case kindLocalGit:
		repo, err := openRepo(loc.dir)
		if err != nil {
			return nil, invalid(loc.display, "failed to open repository %s: %v", loc.display, err)
		}
		hash, err := repo.resolveLocal(src.Ref)
		if err != nil {
			return nil, p.refError(loc, src.Ref, err)
		}
		if res, err = p.finish(repo, loc, hash, res); err != nil {
			return nil, err
		}
		if src.Ref == "" {
			// HEAD of a work tree: say which files under the path differ
			// from it (they are not what is read).
			if res.Uncommitted, err = repo.uncommitted(res.Path); err != nil {
				return nil, fmt.Errorf("failed to read the status of the work tree %s: %w", loc.display, err)
			}
		}
		return res, nil
	}
	return p.pullRemote(ctx, loc, src, res)
}

func (p *Puller) refError(loc location, ref string, err error) error {
	if errors.Is(err, errRefNotFound) {
		if ref == "" {
			return &Error{Kind: ErrUnknownRef, Repo: loc.display, msg: fmt.Sprintf("repository %s has no commit on HEAD; pass --ref", loc.display)}
		}
		return &Error{Kind: ErrUnknownRef, Repo: loc.display, msg: fmt.Sprintf(
			"ref %q not found in %s: no branch, tag or commit by that name", ref, loc.display)}
	}
	return fmt.Errorf("failed to resolve ref %q in %s: %s", ref, loc.display, p.scrubber(loc).scrub(err.Error()))
}

func (p *Puller) scrubber(loc location) scrubber {
	secrets := append(p.opts.Auth.secrets(), loc.password)
	if len(loc.username) >= 16 { // long enough to be a token passed as the user name
		secrets = append(secrets, loc.username)
	}
	return scrubber{raw: loc.url, safe: loc.display, secrets: secrets}
}

// pullDir handles a plain directory: no Git, the revision is a digest.
func (p *Puller) pullDir(loc location, src Source, res *Result) (*Result, error) {
	if src.Ref != "" {
		return nil, invalid(loc.display, "--ref %q given, but %s is not a Git repository", src.Ref, loc.display)
	}
	if p.keyring != "" {
		return nil, &Error{Kind: ErrSignature, Repo: loc.display, msg: fmt.Sprintf(
			"cannot verify signatures: %s is a plain directory, not a Git repository", loc.display)}
	}
	dir := filepath.Join(loc.given, filepath.FromSlash(res.Path))
	st, err := os.Stat(dir)
	if err != nil || !st.IsDir() {
		return nil, &Error{Kind: ErrPathMissing, Repo: loc.display, msg: fmt.Sprintf(
			"path %q does not exist in directory %s (or is not a directory)", res.Path, loc.display)}
	}
	if err := staysInside(loc, dir, res.Path); err != nil {
		return nil, err
	}
	d, err := DirDigest(dir)
	if err != nil {
		return nil, fmt.Errorf("failed to digest directory %s: %w", dir, err)
	}
	res.Dir, res.Revision = dir, Revision(d)
	return res, nil
}

// DirDigest returns "dir:sha256:<hex>" over the relative names, kinds and
// contents of every file below dir, in lexical order.
func DirDigest(dir string) (string, error) {
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			if d.Name() == ".git" && p != dir {
				return filepath.SkipDir
			}
			return nil
		case d.Type()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "l %s\x00%s\n", rel, t)
		case d.Type().IsRegular():
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			fh := sha256.New()
			_, err = io.Copy(fh, f)
			f.Close()
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "f %s\x00%x\n", rel, fh.Sum(nil))
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return "dir:sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// cacheKey names a remote's cache entry: a digest of its credential-free URL.
func cacheKey(display string) string {
	s := sha256.Sum256([]byte(display))
	return hex.EncodeToString(s[:12])
}

func (p *Puller) pullRemote(ctx context.Context, loc location, src Source, res *Result) (*Result, error) {
	auth, err := p.opts.Auth.method(loc)
	if err != nil {
		return nil, err
	}
	reposDir := filepath.Join(p.opts.CacheDir, "repos")
	if err := os.MkdirAll(reposDir, 0o700); err != nil {
		return nil, fmt.Errorf("failed to create cache directory %s: %w", reposDir, err)
	}
	key := cacheKey(loc.display)
	gitDir := filepath.Join(reposDir, key+".git")
	lock := flock.New(filepath.Join(reposDir, key+".lock"))
	ok, err := lock.TryLockContext(ctx, 50*time.Millisecond)
	if err != nil || !ok {
		return nil, fmt.Errorf("failed to lock cache %s: %w", gitDir, errors.Join(err, ctx.Err()))
	}
	defer lock.Unlock()

	rem := &gitRemote{url: loc.url, auth: auth}
	log := p.log.With("repo", loc.display, "ref", src.Ref)
	for attempt := 0; ; attempt++ {
		hash, fetched, err := p.update(ctx, loc, rem, gitDir, src.Ref, log)
		var corrupt *corruptCache
		if errors.As(err, &corrupt) && attempt == 0 {
			log.Warn("cache is corrupt; cloning again", "cache", gitDir, "reason", p.scrubber(loc).scrub(corrupt.err.Error()))
			if err := os.RemoveAll(gitDir); err != nil {
				return nil, fmt.Errorf("failed to remove corrupt cache %s: %w", gitDir, err)
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		repo, err := openRepo(gitDir)
		if err != nil {
			return nil, fmt.Errorf("failed to open cache %s: %w", gitDir, err)
		}
		res.Fetched = fetched
		out, err := p.finish(repo, loc, hash, res)
		if errors.As(err, &corrupt) && attempt == 0 {
			log.Warn("cache is corrupt; cloning again", "cache", gitDir, "reason", corrupt.err.Error())
			if err := os.RemoveAll(gitDir); err != nil {
				return nil, fmt.Errorf("failed to remove corrupt cache %s: %w", gitDir, err)
			}
			continue
		}
		return out, err
	}
}

// corruptCache marks a failure that a fresh clone should cure.
type corruptCache struct{ err error }

func (c *corruptCache) Error() string { return "corrupt cache: " + c.err.Error() }

// update makes sure the cache holds the commit ref resolves to, and returns
// its hash. The cheap path: list the remote's refs (no pack transfer) and
// stop if the cache already holds the object they point at.
func (p *Puller) update(ctx context.Context, loc location, rem *gitRemote, gitDir, ref string, log *slog.Logger) (string, bool, error) {
	repo, err := openRepo(gitDir)
	if err != nil {
		if _, statErr := os.Stat(gitDir); statErr == nil {
			return "", false, &corruptCache{err: err}
		}
		if repo, err = initBare(gitDir); err != nil {
			return "", false, fmt.Errorf("failed to create cache %s: %w", gitDir, err)
		}
		log.Debug("cloning into cache", "cache", gitDir)
	}
	if hashPattern.MatchString(ref) && repo.has(ref) {
		return ref, false, nil // commits are immutable: no need to ask the remote
	}
	scrub := p.scrubber(loc)
	timeout := cmp.Or(p.opts.Timeout, DefaultTimeout)
	lctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	refs, err := rem.list(lctx)
	if err != nil {
		return "", false, p.transportError(ctx, lctx, timeout, loc, "list refs of", err, scrub)
	}
	want, err := pickRef(refs, ref)
	if err != nil {
		return "", false, p.refError(loc, ref, err)
	}
	if want != "" && repo.has(want) {
		log.Debug("remote has not moved", "commit", want)
		return want, false, nil
	}
	log.Debug("fetching", "want", want)
	fctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := rem.fetchInto(fctx, repo); err != nil {
		if te := classify(err, loc.display, scrub); te != nil || fctx.Err() != nil {
			return "", false, p.transportError(ctx, fctx, timeout, loc, "fetch from", err, scrub)
		}
		return "", false, &corruptCache{err: err}
	}
	if want == "" { // a commit hash the remote does not advertise
		want = ref
	}
	if !repo.has(want) {
		return "", true, &Error{Kind: ErrUnknownRef, Repo: loc.display, msg: fmt.Sprintf(
			"commit %s not found in %s: it is not reachable from any branch or tag", want, loc.display)}
	}
	return want, true, nil
}

func (p *Puller) transportError(ctx, opCtx context.Context, timeout time.Duration, loc location, verb string, err error, scrub scrubber) error {
	if ctx.Err() != nil {
		return fmt.Errorf("failed to %s %s: %w", verb, loc.display, ctx.Err())
	}
	if opCtx.Err() != nil {
		return &Error{Kind: ErrUnreachable, Repo: loc.display, msg: fmt.Sprintf(
			"failed to %s %s: no answer within %s; check the server and the network, or raise --git-timeout", verb, loc.display, timeout)}
	}
	if te := classify(err, loc.display, scrub); te != nil {
		return te
	}
	return fmt.Errorf("failed to %s %s: %s", verb, loc.display, bound(scrub.scrub(err.Error())))
}

// pickRef resolves ref against advertised refs. It returns "" (and no
// error) for a full commit hash the remote does not advertise: a fetch
// will tell whether it exists.
func pickRef(refs map[string]string, ref string) (string, error) {
	if ref == "" {
		if h, ok := refs["HEAD"]; ok {
			return h, nil
		}
		return "", errRefNotFound
	}
	if hashPattern.MatchString(ref) {
		return "", nil
	}
	for _, name := range candidateRefs(ref) {
		if h, ok := refs[name+"^{}"]; ok { // annotated tag, peeled
			return h, nil
		}
		if h, ok := refs[name]; ok {
			return h, nil
		}
	}
	return "", errRefNotFound
}

// finish reads the commit, verifies its signature and materialises the
// sub-path.
func (p *Puller) finish(repo repository, loc location, hash string, res *Result) (*Result, error) {
	c, err := repo.commit(hash)
	if err != nil {
		if loc.kind == kindRemote {
			return nil, &corruptCache{err: err}
		}
		return nil, fmt.Errorf("failed to read commit %s of %s: %w", hash, loc.display, err)
	}
	if p.keyring != "" {
		signer, err := repo.verify(hash, p.keyring)
		if err != nil {
			why := "its signature is not from a trusted key: " + err.Error()
			if errors.Is(err, errUnsigned) {
				why = "it is not signed"
			}
			return nil, &Error{Kind: ErrSignature, Repo: loc.display, msg: fmt.Sprintf(
				"refusing commit %s of %s: %s (--verify-signatures is set)", c.Hash, loc.display, why)}
		}
		c.Signer = signer
	}
	res.Commit = &c
	res.Revision = Revision(c.Hash)
	dir, err := p.materialise(repo, c.Hash, res.Path)
	if err != nil {
		if isMissingPath(err) {
			return nil, &Error{Kind: ErrPathMissing, Repo: loc.display, msg: fmt.Sprintf(
				"path %q does not exist in commit %s of %s (or is not a directory)", res.Path, c.Hash, loc.display)}
		}
		if loc.kind == kindRemote {
			return nil, &corruptCache{err: err}
		}
		return nil, err
	}
	res.Dir = dir
	return res, nil
}

// materialise writes the sub-path of the commit's tree under the cache,
// once per (commit, path): trees/<commit>/<path key>/<path>. A finished
// tree is renamed into place atomically, so readers never see half of one.
func (p *Puller) materialise(repo repository, hash, sub string) (string, error) {
	pk := "root"
	if sub != "" {
		s := sha256.Sum256([]byte(sub))
		pk = hex.EncodeToString(s[:6])
	}
	commitDir := filepath.Join(p.opts.CacheDir, "trees", hash)
	final := filepath.Join(commitDir, pk)
	dir := filepath.Join(final, filepath.FromSlash(sub))
	if st, err := os.Stat(dir); err == nil && st.IsDir() {
		return dir, nil
	}
	if err := os.MkdirAll(commitDir, 0o755); err != nil {
		return "", fmt.Errorf("failed to create %s: %w", commitDir, err)
	}
	tmp, err := os.MkdirTemp(commitDir, ".tmp-")
	if err != nil {
		return "", fmt.Errorf("failed to create a temporary tree in %s: %w", commitDir, err)
	}
	if err := repo.writeTree(hash, sub, filepath.Join(tmp, filepath.FromSlash(sub))); err != nil {
		os.RemoveAll(tmp)
		return "", err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		os.RemoveAll(tmp)
		return "", err
	}
	if err := os.Rename(tmp, final); err != nil {
		os.RemoveAll(tmp)
		if st, statErr := os.Stat(dir); statErr == nil && st.IsDir() {
			return dir, nil // another run won the race
		}
		return "", fmt.Errorf("failed to move tree into %s: %w", final, err)
	}
	return dir, nil
}

// staysInside refuses a plain directory whose spec directory (through
// --path) or any file in it is a symbolic link that leads out of the
// directory given: a pull request could otherwise make swarmsync read, and
// quote in its diagnostics, any file of the machine. Links inside the
// directory are fine. Where a link leads outside is never shown.
func staysInside(loc location, dir, sub string) error {
	root, err := filepath.EvalSymlinks(loc.dir)
	if err != nil {
		return invalid(loc.display, "failed to resolve directory %s: %v", loc.display, err)
	}
	inside := func(p string) bool {
		r, err := filepath.EvalSymlinks(p)
		if err != nil {
			return false
		}
		rel, err := filepath.Rel(root, r)
		return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
	}
	dir = filepath.Join(loc.dir, filepath.FromSlash(sub))
	if !inside(dir) {
		return invalid(loc.display, "--path %q leads out of directory %s through a symbolic link; point --repo at the directory that holds the specs", sub, loc.display)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return invalid(loc.display, "failed to read directory %s: %v", loc.display, err)
	}
	for _, e := range entries {
		if e.Type()&os.ModeSymlink != 0 && !inside(filepath.Join(dir, e.Name())) {
			return invalid(loc.display, "%s in directory %s is a symbolic link that leads out of it (or nowhere); copy the file into the directory instead",
				path.Join(sub, e.Name()), loc.display)
		}
	}
	return nil
}
