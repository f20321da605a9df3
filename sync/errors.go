package sync

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/go-git/go-git/v5/plumbing/transport"
)

// The kinds of failure a caller may want to tell apart. Every error Pull
// returns for one of these reasons is an *Error that matches its kind with
// errors.Is.
var (
	// ErrInvalidSource: the source, ref, path or options are malformed.
	ErrInvalidSource = errors.New("invalid source")
	// ErrUnreachable: the remote cannot be reached or does not exist.
	ErrUnreachable = errors.New("remote unreachable")
	// ErrAuth: the remote refused the credentials (or wanted some).
	ErrAuth = errors.New("authentication failed")
	// ErrHostKey: the ssh host key is unknown or does not match known_hosts.
	ErrHostKey = errors.New("host key verification failed")
	// ErrUnknownRef: no branch, tag or commit by that name.
	ErrUnknownRef = errors.New("unknown ref")
	// ErrPathMissing: the sub-path does not exist in the commit.
	ErrPathMissing = errors.New("path missing")
	// ErrSignature: the commit lacks a good signature from a trusted key.
	ErrSignature = errors.New("signature verification failed")
)

// Error is a typed, credential-free failure of Pull. Its message is
// complete and safe to print; it deliberately does not unwrap to the
// underlying transport error (which may quote a URL with credentials).
type Error struct {
	Kind error  // one of the Err* kinds above
	Repo string // the repository, credentials stripped
	msg  string
}

func (e *Error) Error() string { return e.msg }

// Is reports whether target is the error's kind.
func (e *Error) Is(target error) bool { return target == e.Kind }

// scrubber removes credentials from text that may quote them.
type scrubber struct {
	raw, safe string   // the URL as given and as shown
	secrets   []string // values that must never be shown
}

func (s scrubber) scrub(text string) string {
	if s.raw != "" && s.raw != s.safe {
		text = strings.ReplaceAll(text, s.raw, s.safe)
	}
	for _, v := range s.secrets {
		if len(v) >= 3 {
			text = strings.ReplaceAll(text, v, "***")
		}
	}
	return userinfoPattern.ReplaceAllString(text, "://")
}

// classify maps a transport failure to a typed error. It returns nil when
// the failure is none of the known kinds.
func classify(err error, repo string, s scrubber) *Error {
	full := strings.Join(strings.Fields(s.scrub(err.Error())), " ")
	msg := strings.ToLower(full)
	detail := bound(full)
	switch {
	case strings.Contains(msg, "knownhosts") || strings.Contains(msg, "host key"):
		return &Error{Kind: ErrHostKey, Repo: repo, msg: "failed to verify the ssh host key of " + repo + ": " + detail +
			"; add the host's key to known_hosts (ssh-keyscan) or pass --known-hosts FILE"}
	case errors.Is(err, transport.ErrAuthenticationRequired), errors.Is(err, transport.ErrAuthorizationFailed),
		errors.Is(err, transport.ErrInvalidAuthMethod), strings.Contains(msg, "unable to authenticate"):
		hint := "; set " + EnvToken + " (or " + EnvUsername + " and " + EnvPassword + ") to credentials the server accepts"
		if strings.HasPrefix(repo, "ssh://") || !strings.Contains(repo, "://") {
			hint = "; pass --ssh-key FILE (or set " + EnvSSHKey + ") or load a key the server accepts into the ssh-agent"
		}
		return &Error{Kind: ErrAuth, Repo: repo, msg: "failed to authenticate to " + repo + ": " + detail + hint}
	case errors.Is(err, transport.ErrRepositoryNotFound):
		return &Error{Kind: ErrUnreachable, Repo: repo, msg: "failed to reach repository " + repo + ": repository not found; check the URL"}
	case errors.Is(err, transport.ErrEmptyRemoteRepository):
		return &Error{Kind: ErrUnknownRef, Repo: repo, msg: "repository " + repo + " is empty: it has no branches or tags"}
	}
	var netErr net.Error
	var opErr *net.OpError
	var dnsErr *net.DNSError
	if errors.As(err, &netErr) || errors.As(err, &opErr) || errors.As(err, &dnsErr) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		strings.Contains(msg, "connection refused") || strings.Contains(msg, "no such host") ||
		strings.Contains(msg, "i/o timeout") || strings.Contains(msg, "dial tcp") ||
		strings.Contains(msg, "network is unreachable") {
		return &Error{Kind: ErrUnreachable, Repo: repo, msg: "failed to reach repository " + repo + ": " + detail +
			"; check the URL, the network and that the server is up"}
	}
	return nil
}

// maxDetail bounds the text of a server's error quoted in a message.
const maxDetail = 512

// bound cuts s to maxDetail bytes (on a rune boundary), saying how much was
// left out: a server's error text is input.
func bound(s string) string {
	if len(s) <= maxDetail {
		return s
	}
	cut := maxDetail
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s... (%d more bytes)", s[:cut], len(s)-cut)
}
