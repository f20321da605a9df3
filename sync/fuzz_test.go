package sync

import (
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
		check := func(what, out string) {
			for _, secret := range []string{user, pass} {
				// A secret that the message's own words or the rest of the
				// URL could spell is not checked (spaces, "URL", the host).
				if len(strings.TrimSpace(secret)) >= 4 && !strings.Contains(rest, secret) && !strings.Contains(scheme, secret) &&
					!strings.Contains("invalid repository URL unsupported scheme", secret) && strings.Contains(out, secret) {
					t.Fatalf("%s of %q leaks %q: %q", what, raw, secret, out)
				}
			}
		}
		check("Redact", Redact(raw))
		if _, err := parseLocation(raw); err != nil {
			check("parse error", err.Error())
		}
		if checkRef(rest) == "" && strings.ContainsAny(rest, " ~^:?*[\\\x00\x7f") {
			t.Fatalf("checkRef accepts %q", rest)
		}
	})
}
