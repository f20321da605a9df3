package gitserve

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/swarmsync/swarmsync/internal/testenv"
)

// Env returns the environment for git runs: the process environment without
// GIT_* variables, plus an isolated configuration, a fixed identity and a
// fixed date, plus extra ("K=V").
func Env(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GIT_") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Spec Author",
		"GIT_AUTHOR_EMAIL=author@example.test",
		"GIT_COMMITTER_NAME=Spec Author",
		"GIT_COMMITTER_EMAIL=author@example.test",
		"GIT_AUTHOR_DATE=2026-01-02T03:04:05Z",
		"GIT_COMMITTER_DATE=2026-01-02T03:04:05Z",
		"GIT_TERMINAL_PROMPT=0",
	)
	return append(env, extra...)
}

// Git runs git in dir with Env(extra...) and returns its trimmed stdout; it
// fails the test on error.
func Git(t testing.TB, dir string, extra []string, args ...string) string {
	t.Helper()
	testenv.NeedCommands(t, "git")
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = Env(extra...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("git %s in %s: %v\n%s", strings.Join(args, " "), dir, err, errb.String())
	}
	return strings.TrimSpace(out.String())
}

// Repo is a work tree made with the git CLI.
type Repo struct {
	t   testing.TB
	Dir string
	// Extra environment for every git run (for example a GNUPGHOME).
	Extra []string
}

// NewRepo initialises a work tree on branch main in dir (created).
func NewRepo(t testing.TB, dir string) *Repo {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	Git(t, dir, nil, "init", "-q", "-b", "main")
	return &Repo{t: t, Dir: dir}
}

// Git runs git in the work tree.
func (r *Repo) Git(args ...string) string {
	r.t.Helper()
	return Git(r.t, r.Dir, r.Extra, args...)
}

// Commit writes files (path → content; an empty content deletes the file),
// commits them with the message (extra args go to git commit, e.g. -S) and
// returns the new commit hash.
func (r *Repo) Commit(files map[string]string, msg string, extra ...string) string {
	r.t.Helper()
	for name, content := range files {
		p := filepath.Join(r.Dir, filepath.FromSlash(name))
		if content == "" {
			if err := os.Remove(p); err != nil {
				r.t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
	r.Git("add", "-A")
	r.Git(append([]string{"commit", "-q", "--allow-empty", "-m", msg}, extra...)...)
	return r.Git("rev-parse", "HEAD")
}

// Bare makes a bare clone of the work tree at dst and returns dst.
func (r *Repo) Bare(dst string) string {
	r.t.Helper()
	Git(r.t, filepath.Dir(dst), nil, "clone", "-q", "--bare", r.Dir, dst)
	return dst
}

// Push pushes all branches and tags to the bare repository at dst.
func (r *Repo) Push(dst string) {
	r.t.Helper()
	r.Git("push", "-q", "--force", dst, "refs/heads/*:refs/heads/*", "refs/tags/*:refs/tags/*")
}

// FastImport creates a bare repository at dir whose main branch has n
// commits (each touching specs/cluster.yaml and one numbered file), using
// git fast-import, and returns the tip's hash.
func FastImport(t testing.TB, dir string, n int) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	Git(t, dir, nil, "init", "-q", "--bare", "-b", "main")
	var b bytes.Buffer
	for i := 1; i <= n; i++ {
		spec := fmt.Sprintf("name: bench\nrevision: %d\n", i)
		fmt.Fprintf(&b, "commit refs/heads/main\nmark :%d\ncommitter Spec Author <author@example.test> %d +0000\n", i, 1767225600+i)
		msg := fmt.Sprintf("commit %d\n", i)
		fmt.Fprintf(&b, "data %d\n%s", len(msg), msg)
		if i > 1 {
			fmt.Fprintf(&b, "from :%d\n", i-1)
		}
		fmt.Fprintf(&b, "M 100644 inline specs/cluster.yaml\ndata %d\n%s", len(spec), spec)
		f := fmt.Sprintf("%d\n", i)
		fmt.Fprintf(&b, "M 100644 inline history/%03d/%d.txt\ndata %d\n%s\n", i%1000, i, len(f), f)
	}
	cmd := exec.Command("git", "fast-import", "--quiet")
	cmd.Dir = dir
	cmd.Env = Env()
	cmd.Stdin = &b
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git fast-import: %v\n%s", err, out)
	}
	return Git(t, dir, nil, "rev-parse", "refs/heads/main")
}
