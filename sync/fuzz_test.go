package sync

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzRedact builds URLs with credentials and checks that neither the
// user-info nor the password survives Redact, nor the error of a URL that
// does not parse. Seeds hold the hostile classes: passwords with '/', '@',
// '?', '#', spaces, percent escapes and control characters.
func FuzzRedact(f *testing.F) {
	seeds := []struct{ scheme, user, pass, rest string }{
		{"https", "bob", "hunter22", "git.example.test/specs.git"},
		{"https", "ghp_abcdef", "", "git.example.test/org/specs.git"},
		{"http", "bob", "p/a@s s", "git.example.test/specs.git?x=1"},
		{"https", "bob", "pa?ss#word", "git.example.test/specs.git"},
		{"https", "bob", "%zz%", "git.example.test/specs.git"},
		{"ssh", "git", "t\x1b[31m\n", "127.0.0.1:2222/srv/specs.git"},
		{"https", "b@b", "x:y@z", "h/p%zz.git#frag"},
		{"file", "u", "secretpw", "/srv/specs.git"},
	}
	for _, s := range seeds {
		f.Add(s.scheme, s.user, s.pass, s.rest)
	}
	f.Fuzz(func(t *testing.T, scheme, user, pass, rest string) {
		if strings.Contains(scheme, "://") || strings.EqualFold(scheme, "file") {
			return // a file URL names a local path: no credentials there
		}
		cred := user
		if pass != "" {
			cred += ":" + pass
		}
		raw := scheme + "://" + cred + "@" + rest
		// Redact does not depend on the credentials at all.
		red := Redact(raw)
		if other := Redact(scheme + "://x@" + rest); red != other {
			t.Fatalf("Redact(%q) = %q depends on the credentials (without them: %q)", raw, red, other)
		}
		// A parse error is formed from the redacted URL: a secret appears
		// in it only where the redacted URL or the message's own words
		// spell it.
		if _, err := parseLocation(raw); err != nil {
			allowed := red + " invalid repository URL malformed credentials unsupported scheme in credentials in the repository URL are not accepted"
			if _, perr := url.Parse(red); perr != nil {
				allowed += " " + perr.Error()
			}
			for _, secret := range []string{user, pass} {
				if len(strings.TrimSpace(secret)) >= 4 && !strings.Contains(allowed, secret) && strings.Contains(err.Error(), secret) {
					t.Fatalf("parse error of %q leaks %q: %q", raw, secret, err)
				}
			}
		}
		if checkRef(rest) == "" && strings.ContainsAny(rest, " ~^:?*[\\\x00\x7f") {
			t.Fatalf("checkRef accepts %q", rest)
		}
	})
}
