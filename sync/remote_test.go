package sync_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/swarmsync/swarmsync/internal/gitserve"
	"github.com/swarmsync/swarmsync/internal/testenv"
	"github.com/swarmsync/swarmsync/sync"
)

// serveSpecs builds the spec repository and a bare copy under base/specs.git.
func serveSpecs(t *testing.T) (r *specRepo, base, bare string) {
	t.Helper()
	tmp := t.TempDir()
	r = newSpecRepo(t, filepath.Join(tmp, "work"))
	base = filepath.Join(tmp, "srv")
	if err := os.MkdirAll(base, 0o755); err != nil {
		t.Fatal(err)
	}
	bare = r.Bare(filepath.Join(base, "specs.git"))
	return r, base, bare
}

// TestPullRemote runs the same story over git daemon and smart HTTP: clone,
// no-change poll, fetch after a push, tags, pinned commits, errors.
func TestPullRemote(t *testing.T) {
	testenv.NeedCommands(t, "git")
	type server struct {
		name string
		url  func(t *testing.T, base string) (string, *gitserve.HTTP)
	}
	servers := []server{
		{"git daemon", func(t *testing.T, base string) (string, *gitserve.HTTP) {
			return gitserve.StartDaemon(t, base).URL + "specs.git", nil
		}},
		{"smart http", func(t *testing.T, base string) (string, *gitserve.HTTP) {
			h := gitserve.StartHTTP(t, base, "", "")
			return h.URL + "specs.git", h
		}},
	}
	for _, s := range servers {
		t.Run(s.name, func(t *testing.T) {
			r, base, bare := serveSpecs(t)
			url, h := s.url(t, base)
			p := puller(t, filepath.Join(t.TempDir(), "cache"))
			ctx := context.Background()
			pull := func(ref, path string) outcome {
				t.Helper()
				res, err := p.Pull(ctx, sync.Source{Repo: url, Ref: ref, Path: path})
				if err != nil {
					t.Fatal(err)
				}
				if res.Commit == nil || string(res.Revision) != res.Commit.Hash || res.Repo != url {
					t.Errorf("result = %+v, want Commit matching Revision and Repo %s", res, url)
				}
				return outcome{string(res.Revision), readFile(t, filepath.Join(res.Dir, "prod.yaml")), res.Fetched}
			}
			v1, v2 := "name: prod\n", "name: prod\nmanagers: 3\n"

			if d := cmp.Diff(outcome{r.second, v2, true}, pull("", "specs")); d != "" {
				t.Errorf("first pull (clone) (-want +got)\n%s", d)
			}
			if h != nil {
				h.Reset()
			}
			if d := cmp.Diff(outcome{r.second, v2, false}, pull("", "specs")); d != "" {
				t.Errorf("no-change poll (-want +got)\n%s", d)
			}
			if h != nil {
				reqs := h.Requests()
				if n := gitserve.Fetches(reqs); n != 0 || len(reqs) == 0 {
					t.Errorf("no-change poll: %d pack fetches in %+v, want 0 (and one ref listing)", n, reqs)
				}
			}
			if d := cmp.Diff(outcome{r.first, v1, false}, pull("v1", "specs")); d != "" {
				t.Errorf("annotated tag already in the cache (-want +got)\n%s", d)
			}
			if h != nil {
				h.Reset()
			}
			if d := cmp.Diff(outcome{r.first, v1, false}, pull(r.first, "specs")); d != "" {
				t.Errorf("pinned commit (-want +got)\n%s", d)
			}
			if h != nil && len(h.Requests()) != 0 {
				t.Errorf("pinned commit in the cache asked the server: %+v", h.Requests())
			}

			// A push moves main: the next poll fetches incrementally.
			third := r.Commit(map[string]string{"specs/prod.yaml": "name: prod\nmanagers: 5\n"}, "third")
			r.Push(bare)
			if h != nil {
				h.Reset()
			}
			if d := cmp.Diff(outcome{third, "name: prod\nmanagers: 5\n", true}, pull("main", "specs")); d != "" {
				t.Errorf("after push (-want +got)\n%s", d)
			}
			if h != nil {
				if n := gitserve.Fetches(h.Requests()); n != 1 {
					t.Errorf("after push: %d pack fetches, want 1", n)
				}
			}

			for _, tc := range []struct {
				name      string
				ref, path string
				kind      error
				message   string
			}{
				{"unknown ref", "v9", "specs", sync.ErrUnknownRef, `ref "v9" not found in ` + url + `: no branch, tag or commit by that name`},
				{"unknown commit", strings.Repeat("ab", 20), "specs", sync.ErrUnknownRef, "not reachable from any branch or tag"},
				{"path missing", "v1", "clusters", sync.ErrPathMissing, `path "clusters" does not exist in commit ` + r.first + " of " + url},
			} {
				t.Run(tc.name, func(t *testing.T) {
					_, err := p.Pull(ctx, sync.Source{Repo: url, Ref: tc.ref, Path: tc.path})
					if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.message) {
						t.Errorf("error = %v, want kind %v containing %q", err, tc.kind, tc.message)
					}
				})
			}
			missing := strings.TrimSuffix(url, "specs.git") + "nothing.git"
			if _, err := p.Pull(ctx, sync.Source{Repo: missing}); !errors.Is(err, sync.ErrUnreachable) {
				t.Errorf("missing repository: error = %v, want ErrUnreachable", err)
			}
		})
	}
}

// TestPullHTTPAuth checks basic auth from the environment and that no
// credential ever appears in an error.
func TestPullHTTPAuth(t *testing.T) {
	const token = "s3cr3t-t0ken-value"
	r, base, _ := serveSpecs(t)
	h := gitserve.StartHTTP(t, base, "deploy", token)
	url := h.URL + "specs.git"
	userURL := strings.Replace(url, "http://", "http://deploy@", 1)
	cache := filepath.Join(t.TempDir(), "cache")
	tests := []struct {
		name string
		repo string
		env  map[string]string
		kind error // nil: success
	}{
		{"no credentials", url, nil, sync.ErrAuth},
		{"wrong token", url, map[string]string{sync.EnvToken: "wrong-" + token, sync.EnvUsername: "deploy"}, sync.ErrAuth},
		{"wrong password", url, map[string]string{sync.EnvUsername: "deploy", sync.EnvPassword: "hunter2-" + token}, sync.ErrAuth},
		{"token, user from env", url, map[string]string{sync.EnvToken: token, sync.EnvUsername: "deploy"}, nil},
		{"token, user from URL", userURL, map[string]string{sync.EnvToken: token}, nil},
		{"user and password", url, map[string]string{sync.EnvUsername: "deploy", sync.EnvPassword: token}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			auth := sync.AuthFromEnv(func(k string) string { return tc.env[k] })
			p := puller(t, cache, func(o *sync.Options) { o.Auth = auth })
			res, err := p.Pull(context.Background(), sync.Source{Repo: tc.repo, Path: "specs"})
			if tc.kind == nil {
				if err != nil {
					t.Fatal(err)
				}
				if string(res.Revision) != r.second || strings.Contains(res.Repo, "deploy") {
					t.Errorf("result = %+v, want revision %s and no user name in Repo", res, r.second)
				}
				return
			}
			t.Logf("error: %v", err)
			if !errors.Is(err, tc.kind) {
				t.Fatalf("error = %v, want kind %v", err, tc.kind)
			}
			for _, secret := range []string{token, "deploy@"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error leaks %q: %s", secret, err)
				}
			}
			if !strings.Contains(err.Error(), "failed to authenticate to "+url) || !strings.Contains(err.Error(), sync.EnvToken) {
				t.Errorf("error = %q, want it to name the repository and %s", err, sync.EnvToken)
			}
		})
	}
}

// TestPullSSH runs against a real sshd on loopback.
func TestPullSSH(t *testing.T) {
	s := gitserve.StartSSHD(t)
	r, _, bare := serveSpecs(t)
	url := s.URL(bare)
	scp := "root@" + "127.0.0.1:" + bare // scp-style cannot carry a port; used for parsing only
	_ = scp
	cache := filepath.Join(t.TempDir(), "cache")
	empty := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		auth sync.Auth
		kind error
	}{
		{"key and known host", sync.Auth{SSHKeyFile: s.ClientKey, KnownHostsFiles: []string{s.KnownHosts}}, nil},
		{"unknown host key", sync.Auth{SSHKeyFile: s.ClientKey, KnownHostsFiles: []string{empty}}, sync.ErrHostKey},
		{"unknown host key ignored on request", sync.Auth{SSHKeyFile: s.ClientKey, KnownHostsFiles: []string{empty}, InsecureIgnoreHostKey: true}, nil},
		{"key not authorised", sync.Auth{SSHKeyFile: s.OtherKey, KnownHostsFiles: []string{s.KnownHosts}}, sync.ErrAuth},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := puller(t, cache, func(o *sync.Options) { o.Auth = tc.auth })
			res, err := p.Pull(context.Background(), sync.Source{Repo: url, Ref: "v1", Path: "specs"})
			if tc.kind == nil {
				if err != nil {
					t.Fatal(err)
				}
				if string(res.Revision) != r.first {
					t.Errorf("revision = %s, want %s", res.Revision, r.first)
				}
				if strings.Contains(res.Repo, "root@") {
					t.Errorf("Repo = %s, want the user stripped", res.Repo)
				}
				return
			}
			t.Logf("error: %v", err)
			if !errors.Is(err, tc.kind) {
				t.Fatalf("error = %v, want kind %v", err, tc.kind)
			}
		})
	}
}

// TestPullSignatures uses real gpg keys and signed commits.
func TestPullSignatures(t *testing.T) {
	trusted := gitserve.NewGPG(t, "Trusted Signer", "trusted@example.test")
	other := gitserve.NewGPG(t, "Other Signer", "other@example.test")
	tmp := t.TempDir()
	r := gitserve.NewRepo(t, filepath.Join(tmp, "work"))
	unsigned := r.Commit(map[string]string{"specs/prod.yaml": "name: prod\n"}, "unsigned")
	r.Extra = trusted.Env()
	good := r.Commit(map[string]string{"specs/prod.yaml": "name: prod\nmanagers: 3\n"}, "signed", "-S")
	r.Extra = other.Env()
	foreign := r.Commit(map[string]string{"specs/prod.yaml": "name: prod\nmanagers: 5\n"}, "signed by someone else", "-S")
	r.Extra = nil
	base := filepath.Join(tmp, "srv")
	if err := os.MkdirAll(base, 0o755); err != nil {
		t.Fatal(err)
	}
	r.Bare(filepath.Join(base, "specs.git"))
	h := gitserve.StartHTTP(t, base, "", "")
	p := puller(t, filepath.Join(tmp, "cache"), func(o *sync.Options) { o.TrustedKeys = trusted.PublicKey })
	for _, repo := range []string{r.Dir, h.URL + "specs.git"} {
		for _, tc := range []struct {
			name, ref string
			ok        bool
			message   string
		}{
			{"trusted signature", good, true, ""},
			{"unsigned", unsigned, false, "it is not signed"},
			{"untrusted signature", foreign, false, "not from a trusted key"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				res, err := p.Pull(context.Background(), sync.Source{Repo: repo, Ref: tc.ref, Path: "specs"})
				if tc.ok {
					if err != nil {
						t.Fatal(err)
					}
					if res.Commit.Signer != trusted.Fingerprint {
						t.Errorf("signer = %q, want %q", res.Commit.Signer, trusted.Fingerprint)
					}
					return
				}
				t.Logf("error: %v", err)
				if !errors.Is(err, sync.ErrSignature) || !strings.Contains(err.Error(), tc.message) || !strings.Contains(err.Error(), tc.ref) {
					t.Errorf("error = %v, want ErrSignature naming %s and saying %q", err, tc.ref, tc.message)
				}
			})
		}
	}
	if _, err := sync.New(sync.Options{TrustedKeys: []byte("not a keyring")}); !errors.Is(err, sync.ErrInvalidSource) {
		t.Errorf("bad keyring: error = %v, want ErrInvalidSource", err)
	}
}

// TestCorruptCache damages the cached clone in several ways; each time the
// next pull notices, clones again and succeeds.
func TestCorruptCache(t *testing.T) {
	r, base, _ := serveSpecs(t)
	h := gitserve.StartHTTP(t, base, "", "")
	url := h.URL + "specs.git"
	damage := map[string]func(t *testing.T, gitDir string){
		"garbage config": func(t *testing.T, gitDir string) {
			if err := os.WriteFile(filepath.Join(gitDir, "config"), []byte("[[[ not ini"), 0o644); err != nil {
				t.Fatal(err)
			}
		},
		"packs deleted": func(t *testing.T, gitDir string) {
			if err := os.RemoveAll(filepath.Join(gitDir, "objects", "pack")); err != nil {
				t.Fatal(err)
			}
		},
		"packs truncated": func(t *testing.T, gitDir string) {
			packs, _ := filepath.Glob(filepath.Join(gitDir, "objects", "pack", "*.pack"))
			if len(packs) == 0 {
				t.Fatal("no packs in the cache")
			}
			for _, p := range packs {
				if err := os.Truncate(p, 40); err != nil {
					t.Fatal(err)
				}
			}
		},
	}
	for name, f := range damage {
		t.Run(name, func(t *testing.T) {
			cache := filepath.Join(t.TempDir(), "cache")
			p := puller(t, cache)
			if _, err := p.Pull(context.Background(), sync.Source{Repo: url, Ref: "v1"}); err != nil {
				t.Fatal(err)
			}
			gitDirs, _ := filepath.Glob(filepath.Join(cache, "repos", "*.git"))
			if len(gitDirs) != 1 {
				t.Fatalf("cache repos = %v, want one", gitDirs)
			}
			f(t, gitDirs[0])
			res, err := p.Pull(context.Background(), sync.Source{Repo: url, Path: "specs"})
			if err != nil {
				t.Fatalf("pull after damage: %v", err)
			}
			if string(res.Revision) != r.second || !res.Fetched {
				t.Errorf("revision = %s fetched = %v, want %s fetched again", res.Revision, res.Fetched, r.second)
			}
		})
	}
}

// TestConcurrentPulls runs several pullers (as separate runs would) on one
// cache at once.
func TestConcurrentPulls(t *testing.T) {
	r, base, _ := serveSpecs(t)
	h := gitserve.StartHTTP(t, base, "", "")
	cache := filepath.Join(t.TempDir(), "cache")
	var wg gosync.WaitGroup
	errs := make([]error, 6)
	revs := make([]string, 6)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := sync.New(sync.Options{CacheDir: cache})
			if err != nil {
				errs[i] = err
				return
			}
			res, err := p.Pull(context.Background(), sync.Source{Repo: h.URL + "specs.git", Path: "specs"})
			if err != nil {
				errs[i] = err
				return
			}
			revs[i] = string(res.Revision)
			if got, err := os.ReadFile(filepath.Join(res.Dir, "prod.yaml")); err != nil || !strings.Contains(string(got), "managers: 3") {
				errs[i] = errors.New("incomplete checkout: " + string(got))
			}
		}()
	}
	wg.Wait()
	for i := range errs {
		if errs[i] != nil || revs[i] != r.second {
			t.Errorf("pull %d: revision %s, error %v; want %s", i, revs[i], errs[i], r.second)
		}
	}
	if n := gitserve.Fetches(h.Requests()); n != 1 {
		t.Errorf("%d pack fetches for 6 concurrent pulls, want 1 (the lock serialises; the rest find the commit cached)", n)
	}
}

// A server that accepts and never answers costs at most the timeout; a
// server's error text is quoted bounded.
func TestPullTimeoutAndBoundedErrors(t *testing.T) {
	ln := testenv.SilentServer(t, "tcp", "127.0.0.1:0")
	p := puller(t, filepath.Join(t.TempDir(), "cache"), func(o *sync.Options) { o.Timeout = 300 * time.Millisecond })
	_, err := p.Pull(context.Background(), sync.Source{Repo: "http://" + ln.Addr().String() + "/specs.git"})
	if !errors.Is(err, sync.ErrUnreachable) || !strings.Contains(err.Error(), "no answer within 300ms; check the server and the network, or raise --git-timeout") {
		t.Errorf("silent server: err = %v", err)
	}

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, "\x1b[2J"+strings.Repeat("a very long error ", 1<<16))
	}))
	t.Cleanup(srv.Close)
	_, err = p.Pull(context.Background(), sync.Source{Repo: srv.URL + "/specs.git"})
	if err == nil || len(err.Error()) > 1024 {
		t.Errorf("error body: %d bytes of error: %.300v", len(fmt.Sprint(err)), err)
	}
	t.Logf("error: %v", err)
}
