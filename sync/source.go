package sync

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
)

// Source names where specs come from.
type Source struct {
	// Repo is a Git URL (https://, http://, ssh://, git://, file://, or
	// scp-style user@host:path) or a local path: a repository, a work
	// tree, or a plain directory.
	Repo string
	// Ref is a branch, tag, full ref name or full commit hash; empty means
	// the repository's HEAD. Ignored (must be empty) for a plain directory.
	Ref string
	// Path is the sub-directory (slash-separated, relative) holding the
	// specs; empty means the repository root.
	Path string
}

// sourceKind says how a Source is read.
type sourceKind int

const (
	kindRemote   sourceKind = iota + 1 // fetched into the cache
	kindLocalGit                       // a repository on this machine, read in place
	kindPlainDir                       // a directory that is not a repository
)

// location is a parsed Source.
type location struct {
	kind     sourceKind
	url      string // remote URL as given (may carry a username), for kindRemote
	display  string // credential-free form for messages
	dir      string // local directory for kindLocalGit and kindPlainDir, absolute
	given    string // the local path as given (results keep the caller's spelling)
	scheme   string // https, http, ssh, git (remote only)
	username string // from the URL, if any
	password string // from the URL, if any (rejected for http)
}

var (
	scpPattern      = regexp.MustCompile(`^(?:([^@/:]+)@)?([^@/:]+):(.+)$`)
	userinfoPattern = regexp.MustCompile(`://[^/@\s]+@`)
	hashPattern     = regexp.MustCompile(`^[0-9a-f]{40}$`)
)

// Redact returns repo with any userinfo, query string and fragment
// removed, for messages and logs. It works on the text before parsing it,
// so that a URL that does not parse loses its credentials too: everything
// between "://" and the last '@' goes (a password may hold '/', '?', '#',
// '@' or spaces), then everything from the first '?' or '#'.
func Redact(repo string) string {
	if scheme, rest, ok := strings.Cut(repo, "://"); ok {
		if i := strings.LastIndex(rest, "@"); i >= 0 {
			rest = rest[i+1:]
		}
		if i := strings.IndexAny(rest, "?#"); i >= 0 {
			rest = rest[:i]
		}
		return scheme + "://" + rest
	}
	if m := scpPattern.FindStringSubmatch(repo); m != nil && !looksLocal(repo) {
		return m[2] + ":" + m[3]
	}
	return repo
}

// looksLocal reports whether an scp-looking string is really a local path.
func looksLocal(repo string) bool {
	if strings.HasPrefix(repo, "/") || strings.HasPrefix(repo, ".") {
		return true
	}
	i := strings.Index(repo, ":")
	if s := strings.Index(repo, "/"); s >= 0 && s < i {
		return true
	}
	_, err := os.Stat(repo)
	return err == nil
}

func invalid(repo, format string, args ...any) *Error {
	return &Error{Kind: ErrInvalidSource, Repo: repo, msg: fmt.Sprintf(format, args...)}
}

// IsLocal reports whether repo names a source on this machine (a local
// path or a file:// URL) rather than a remote one.
func IsLocal(repo string) bool {
	loc, err := parseLocation(repo)
	return err == nil && loc.kind != kindRemote
}

// parseLocation decides how to read repo.
func parseLocation(repo string) (location, error) {
	if repo == "" {
		repo = "."
	}
	safe := Redact(repo)
	if strings.Contains(repo, "://") {
		u, err := url.Parse(repo)
		if err != nil {
			// The error quotes the URL: form it from the redacted one.
			why := "malformed credentials"
			if _, serr := url.Parse(safe); serr != nil {
				var uerr *url.Error
				if errors.As(serr, &uerr) {
					why = uerr.Err.Error()
				}
			}
			return location{}, invalid(safe, "invalid repository URL %s: %s", safe, why)
		}
		loc := location{kind: kindRemote, url: repo, display: safe, scheme: u.Scheme}
		if u.User != nil {
			loc.username = u.User.Username()
			loc.password, _ = u.User.Password()
		}
		switch u.Scheme {
		case "file":
			if u.Host != "" && u.Host != "localhost" {
				return location{}, invalid(safe, "invalid repository URL %s: file URLs must name a local path (file:///path)", safe)
			}
			loc, err := localLocation(u.Path)
			if err == nil {
				loc.display = safe
			}
			return loc, err
		case "http", "https":
			if loc.password != "" {
				return location{}, invalid(safe, "credentials in the repository URL %s are not accepted (they end up in shell history and process lists); "+
					"set SWARMSYNC_GIT_TOKEN, or SWARMSYNC_GIT_USERNAME and SWARMSYNC_GIT_PASSWORD, instead", safe)
			}
		case "ssh", "git":
		default:
			return location{}, invalid(safe, "unsupported repository URL scheme %q in %s: use https, ssh, git, file or a local path", u.Scheme, safe)
		}
		return loc, nil
	}
	if m := scpPattern.FindStringSubmatch(repo); m != nil && !looksLocal(repo) {
		return location{kind: kindRemote, url: repo, display: safe, scheme: "ssh", username: m[1]}, nil
	}
	return localLocation(repo)
}

// localLocation classifies a local path: a repository root (work tree or
// bare), or a plain directory.
func localLocation(p string) (location, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return location{}, invalid(p, "invalid repository path %s: %v", p, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return location{}, invalid(p, "repository path %s does not exist", abs)
	}
	if !st.IsDir() {
		return location{}, invalid(p, "repository path %s is not a directory", abs)
	}
	loc := location{kind: kindPlainDir, dir: abs, display: p, given: p}
	if _, err := os.Stat(filepath.Join(abs, ".git")); err == nil {
		loc.kind = kindLocalGit
	} else if isBare(abs) {
		loc.kind = kindLocalGit
	}
	return loc, nil
}

func isBare(dir string) bool {
	for _, n := range []string{"HEAD", "objects", "refs"} {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			return false
		}
	}
	return true
}

// cleanPath validates the sub-path and returns it in clean slash form
// ("" for the root).
func cleanPath(p string) (string, error) {
	p = filepath.ToSlash(p)
	if p == "" || p == "." || p == "/" {
		return "", nil
	}
	if path.IsAbs(p) {
		return "", fmt.Errorf("path %q must be relative to the repository root", p)
	}
	c := path.Clean(p)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("path %q leaves the repository", p)
	}
	if c == "." {
		return "", nil
	}
	return c, nil
}

var shortHashPattern = regexp.MustCompile(`^[0-9a-f]{4,40}$`)

// checkRef says why ref is not a branch, tag, full ref name or commit hash
// (Git's ref name rules, git check-ref-format), or "". Revision syntax
// (main~1, main:path, HEAD@{1}) is refused: it would pick something else
// than the name says.
func checkRef(ref string) string {
	switch {
	case ref == "" || shortHashPattern.MatchString(ref):
		return ""
	case len(ref) > 255:
		return "longer than 255 characters"
	case ref == "@":
		return "'@' alone is not a ref name"
	case strings.Contains(ref, ".."), strings.Contains(ref, "@{"), strings.Contains(ref, "//"):
		return "'..', '@{' and '//' are not allowed in a ref name"
	case strings.HasSuffix(ref, "/"), strings.HasSuffix(ref, "."), strings.HasSuffix(ref, ".lock"):
		return "a ref name cannot end with '/', '.' or '.lock'"
	case strings.HasPrefix(ref, "/"), strings.HasPrefix(ref, "-"):
		return "a ref name cannot start with '/' or '-'"
	}
	for _, r := range ref {
		if r < 0x20 || r == 0x7f || strings.ContainsRune(" ~^:?*[\\", r) {
			return fmt.Sprintf("character %q is not allowed in a ref name (revision syntax is not accepted)", r)
		}
	}
	for _, c := range strings.Split(ref, "/") {
		if strings.HasPrefix(c, ".") {
			return "a ref name component cannot start with '.'"
		}
	}
	return ""
}
