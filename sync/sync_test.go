package sync_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/swarmsync/swarmsync/internal/gitserve"
	gosync "github.com/swarmsync/swarmsync/sync"
)

// specRepo builds a work tree with two commits: v1 (tagged, annotated)
// and a later one on main, plus a lightweight tag "light" on the first.
type specRepo struct {
	*gitserve.Repo
	first, second string
}

func newSpecRepo(t *testing.T, dir string) *specRepo {
	t.Helper()
	r := gitserve.NewRepo(t, dir)
	first := r.Commit(map[string]string{
		"specs/prod.yaml":  "name: prod\n",
		"specs/sub/x.yaml": "x: 1\n",
		"README.md":        "readme\n",
	}, "first")
	r.Git("tag", "-a", "-m", "release v1", "v1")
	r.Git("tag", "light")
	second := r.Commit(map[string]string{"specs/prod.yaml": "name: prod\nmanagers: 3\n"}, "second")
	r.Git("branch", "old", first)
	return &specRepo{Repo: r, first: first, second: second}
}

func puller(t testing.TB, cache string, mod ...func(*gosync.Options)) *gosync.Puller {
	t.Helper()
	o := gosync.Options{CacheDir: cache}
	for _, m := range mod {
		m(&o)
	}
	p, err := gosync.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// outcome is what a pull is checked on.
type outcome struct {
	Revision string
	Prod     string // content of prod.yaml in the result dir
	Fetched  bool
}

func TestPullLocal(t *testing.T) {
	tmp := t.TempDir()
	r := newSpecRepo(t, filepath.Join(tmp, "work"))
	bare := r.Bare(filepath.Join(tmp, "specs.git"))
	p := puller(t, filepath.Join(tmp, "cache"))
	v1 := "name: prod\n"
	v2 := "name: prod\nmanagers: 3\n"
	// An uncommitted change is ignored: the committed HEAD is what counts.
	if err := os.WriteFile(filepath.Join(r.Dir, "specs", "prod.yaml"), []byte("dirty\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		src  gosync.Source
		want outcome
	}{
		{"work tree HEAD", gosync.Source{Repo: r.Dir, Path: "specs"}, outcome{r.second, v2, false}},
		{"bare HEAD", gosync.Source{Repo: bare, Path: "specs"}, outcome{r.second, v2, false}},
		{"file URL", gosync.Source{Repo: "file://" + bare, Path: "specs"}, outcome{r.second, v2, false}},
		{"annotated tag", gosync.Source{Repo: bare, Ref: "v1", Path: "specs"}, outcome{r.first, v1, false}},
		{"lightweight tag", gosync.Source{Repo: r.Dir, Ref: "light", Path: "specs"}, outcome{r.first, v1, false}},
		{"branch", gosync.Source{Repo: bare, Ref: "old", Path: "specs/"}, outcome{r.first, v1, false}},
		{"full ref name", gosync.Source{Repo: bare, Ref: "refs/heads/main", Path: "./specs"}, outcome{r.second, v2, false}},
		{"commit hash", gosync.Source{Repo: bare, Ref: r.first, Path: "specs"}, outcome{r.first, v1, false}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := p.Pull(context.Background(), tc.src)
			if err != nil {
				t.Fatal(err)
			}
			got := outcome{string(res.Revision), readFile(t, filepath.Join(res.Dir, "prod.yaml")), res.Fetched}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("(-want +got)\n%s", d)
			}
			if res.Commit == nil || res.Commit.Hash != tc.want.Revision {
				t.Errorf("Commit = %+v, want hash %s", res.Commit, tc.want.Revision)
			}
			if got := readFile(t, filepath.Join(res.Dir, "sub", "x.yaml")); got != "x: 1\n" {
				t.Errorf("sub/x.yaml = %q", got)
			}
			if _, err := os.Stat(filepath.Join(res.Dir, "..", "README.md")); err == nil {
				t.Errorf("files outside --path were materialised")
			}
		})
	}
}

func TestPullErrors(t *testing.T) {
	tmp := t.TempDir()
	r := newSpecRepo(t, filepath.Join(tmp, "work"))
	plain := filepath.Join(tmp, "plain")
	if err := os.MkdirAll(plain, 0o755); err != nil {
		t.Fatal(err)
	}
	p := puller(t, filepath.Join(tmp, "cache"), func(o *gosync.Options) { o.Auth = gosync.Auth{Token: "hunter22"} })
	tests := []struct {
		name    string
		src     gosync.Source
		kind    error
		message string
	}{
		{"unknown ref", gosync.Source{Repo: r.Dir, Ref: "v9"}, gosync.ErrUnknownRef, `ref "v9" not found in ` + r.Dir},
		{"unknown commit", gosync.Source{Repo: r.Dir, Ref: strings.Repeat("ab", 20)}, gosync.ErrUnknownRef, "not found"},
		{"path missing", gosync.Source{Repo: r.Dir, Ref: "v1", Path: "clusters"}, gosync.ErrPathMissing,
			`path "clusters" does not exist in commit ` + r.first},
		{"path is a file", gosync.Source{Repo: r.Dir, Path: "README.md"}, gosync.ErrPathMissing, "not a directory"},
		{"path leaves repo", gosync.Source{Repo: r.Dir, Path: "../x"}, gosync.ErrInvalidSource, "leaves the repository"},
		{"no such directory", gosync.Source{Repo: filepath.Join(tmp, "nope")}, gosync.ErrInvalidSource, "does not exist"},
		{"ref on plain dir", gosync.Source{Repo: plain, Ref: "main"}, gosync.ErrInvalidSource, "not a Git repository"},
		{"path missing in plain dir", gosync.Source{Repo: plain, Path: "x"}, gosync.ErrPathMissing, `path "x" does not exist`},
		{"password in URL", gosync.Source{Repo: "https://bob:hunter22@127.0.0.1:1/x.git"}, gosync.ErrInvalidSource, "not accepted"},
		{"URL that does not parse", gosync.Source{Repo: "https://bob:hunter22 x/%zz@127.0.0.1:1/x.git?t=hunter22"}, gosync.ErrInvalidSource,
			"invalid repository URL https://127.0.0.1:1/x.git: malformed credentials"},
		{"URL that does not parse after the host", gosync.Source{Repo: "https://bob:hunter22@127.0.0.1:1/x%zz.git"}, gosync.ErrInvalidSource,
			`invalid repository URL https://127.0.0.1:1/x%zz.git: invalid URL escape "%zz"`},
		{"token over plain http", gosync.Source{Repo: "http://git.example.test/x.git"}, gosync.ErrInvalidSource,
			"refusing to send Git credentials over plain http to http://git.example.test/x.git (anyone on the path could read them): use an https:// URL"},
		{"revision syntax as ref", gosync.Source{Repo: r.Dir, Ref: "main:x"}, gosync.ErrInvalidSource,
			`invalid --ref "main:x": character ':' is not allowed in a ref name (revision syntax is not accepted); use a branch, a tag, a full ref name (refs/...) or a commit hash`},
		{"relative revision as ref", gosync.Source{Repo: r.Dir, Ref: "main~1"}, gosync.ErrInvalidSource, `character '~' is not allowed`},
		{"reflog as ref", gosync.Source{Repo: r.Dir, Ref: "main@{1}"}, gosync.ErrInvalidSource, `'@{'`},
		{"unsupported scheme", gosync.Source{Repo: "ftp://127.0.0.1/x.git"}, gosync.ErrInvalidSource, "unsupported"},
		{"unreachable", gosync.Source{Repo: "http://127.0.0.1:1/x.git"}, gosync.ErrUnreachable, "failed to reach repository http://127.0.0.1:1/x.git"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := p.Pull(context.Background(), tc.src)
			t.Logf("error: %v", err)
			if !errors.Is(err, tc.kind) {
				t.Fatalf("error = %v, want kind %v", err, tc.kind)
			}
			if !strings.Contains(err.Error(), tc.message) {
				t.Errorf("error = %q, want it to contain %q", err, tc.message)
			}
			if strings.Contains(err.Error(), "hunter22") {
				t.Errorf("error leaks the password: %q", err)
			}
		})
	}
}

func TestPullPlainDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "specs"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(content string) {
		if err := os.WriteFile(filepath.Join(dir, "specs", "prod.yaml"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("name: prod\n")
	cache := filepath.Join(t.TempDir(), "cache")
	p := puller(t, cache)
	pull := func() *gosync.Result {
		res, err := p.Pull(context.Background(), gosync.Source{Repo: dir, Path: "specs"})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	a, b := pull(), pull()
	if !strings.HasPrefix(string(a.Revision), "dir:sha256:") || len(a.Revision) != len("dir:sha256:")+64 {
		t.Fatalf("revision = %q, want dir:sha256:<64 hex>", a.Revision)
	}
	if a.Revision != b.Revision {
		t.Errorf("same content, different revisions: %s, %s", a.Revision, b.Revision)
	}
	if a.Dir != filepath.Join(dir, "specs") || a.Commit != nil {
		t.Errorf("Dir = %s, Commit = %v; want the directory itself and no commit", a.Dir, a.Commit)
	}
	write("name: prod\nmanagers: 3\n")
	if c := pull(); c.Revision == a.Revision {
		t.Errorf("content changed but revision did not: %s", c.Revision)
	}
	if _, err := os.Stat(cache); !os.IsNotExist(err) {
		t.Errorf("a plain directory touched the cache: %v", err)
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"https token as user", "https://ghp_abc123@git.example.test/org/specs.git", "https://git.example.test/org/specs.git"},
		{"https user and password", "https://bob:hunter2@git.example.test/specs.git", "https://git.example.test/specs.git"},
		{"query token", "https://git.example.test/specs.git?private_token=xyz", "https://git.example.test/specs.git"},
		{"ssh user", "ssh://git@127.0.0.1:2222/srv/specs.git", "ssh://127.0.0.1:2222/srv/specs.git"},
		{"scp style", "git@git.example.test:org/specs.git", "git.example.test:org/specs.git"},
		{"local path", "./specs", "./specs"},
		{"absolute path", "/srv/specs.git", "/srv/specs.git"},
		{"password with slash, at and space", "https://bob:p/a@s s@git.example.test/specs.git", "https://git.example.test/specs.git"},
		{"does not parse", "https://bob:%zz@git.example.test/specs.git#frag", "https://git.example.test/specs.git"},
		{"fragment", "https://git.example.test/specs.git#tok", "https://git.example.test/specs.git"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if d := cmp.Diff(tc.want, gosync.Redact(tc.in)); d != "" {
				t.Errorf("Redact(%q) (-want +got)\n%s", tc.in, d)
			}
		})
	}
}

// A plain directory's symbolic links may not lead out of it, neither
// through --path nor as a spec file; where they lead is never shown.
func TestPullPlainDirectorySymlinks(t *testing.T) {
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret.yaml"), []byte("token: outside-value\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, d := range []string{"specs", "inner"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "inner", "prod.yaml"), []byte("name: prod\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	links := map[string]string{
		"specs/prod.yaml": filepath.Join(dir, "inner", "prod.yaml"), // inside: fine
		"escape":          outside,
		"leaky/a.yaml":    filepath.Join(outside, "secret.yaml"),
		"dangling/a.yaml": filepath.Join(dir, "nothing"),
	}
	for l, target := range links {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(l)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, filepath.Join(dir, l)); err != nil {
			t.Fatal(err)
		}
	}
	p := puller(t, filepath.Join(t.TempDir(), "cache"))
	if _, err := p.Pull(context.Background(), gosync.Source{Repo: dir, Path: "specs"}); err != nil {
		t.Errorf("a link inside the directory: %v", err)
	}
	for path, want := range map[string]string{
		"escape":   `--path "escape" leads out of directory ` + dir + ` through a symbolic link`,
		"leaky":    `leaky/a.yaml in directory ` + dir + ` is a symbolic link that leads out of it (or nowhere)`,
		"dangling": `dangling/a.yaml in directory ` + dir + ` is a symbolic link that leads out of it (or nowhere)`,
	} {
		_, err := p.Pull(context.Background(), gosync.Source{Repo: dir, Path: path})
		if !errors.Is(err, gosync.ErrInvalidSource) || !strings.Contains(err.Error(), want) {
			t.Errorf("--path %s: err = %v, want %q", path, err, want)
			continue
		}
		if strings.Contains(err.Error(), outside) {
			t.Errorf("--path %s: the error names the outside: %v", path, err)
		}
	}
}
