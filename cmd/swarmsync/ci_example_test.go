package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/swarmsync/swarmsync/internal/gitserve"
	"github.com/swarmsync/swarmsync/internal/testenv"
)

// The CI examples (examples/ci) run examples/ci/swarmsync-pr-plan. These
// tests run that script for real: the swarmsync binary (this test binary,
// see TestMain), a real Git repository shallow-cloned at a detached commit
// as CI checkouts are, a real change to its spec, and a loopback HTTP server
// standing in for the GitHub and GitLab comment APIs.

const prPlanScript = "../../examples/ci/swarmsync-pr-plan"

// comment is a pull-request comment (GitHub) or merge-request note (GitLab).
type comment struct {
	ID   int    `json:"id"`
	Body string `json:"body"`
}

// commentAPI serves the few comment endpoints of GitHub's REST API
// (issues/N/comments, issues/comments/ID) and GitLab's v4 API
// (merge_requests/N/notes[/ID]) for one pull request, paginated by
// per_page and page as theirs are.
type commentAPI struct {
	t      *testing.T
	header string // the authentication header and value the script must send
	value  string

	mu       sync.Mutex
	comments []comment
	nextID   int
	calls    []string // "METHOD /path"
}

var (
	ghList   = regexp.MustCompile(`^/repos/acme/specs/issues/7/comments$`)
	ghUpdate = regexp.MustCompile(`^/repos/acme/specs/issues/comments/(\d+)$`)
	glList   = regexp.MustCompile(`^/api/v4/projects/42/merge_requests/7/notes$`)
	glUpdate = regexp.MustCompile(`^/api/v4/projects/42/merge_requests/7/notes/(\d+)$`)
)

func (a *commentAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls = append(a.calls, r.Method+" "+r.URL.Path)
	if r.Header.Get(a.header) != a.value {
		http.Error(w, `{"message":"Bad credentials"}`, http.StatusUnauthorized)
		return
	}
	list := ghList.MatchString(r.URL.Path) || glList.MatchString(r.URL.Path)
	m := ghUpdate.FindStringSubmatch(r.URL.Path)
	if m == nil {
		m = glUpdate.FindStringSubmatch(r.URL.Path)
	}
	switch {
	case list && r.Method == http.MethodGet:
		per, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		per, page = max(1, min(per, 100)), max(1, page)
		start, end := min(len(a.comments), (page-1)*per), min(len(a.comments), page*per)
		_ = json.NewEncoder(w).Encode(a.comments[start:end])
	case list && r.Method == http.MethodPost:
		var c comment
		if err := json.NewDecoder(r.Body).Decode(&c); err != nil || c.Body == "" {
			http.Error(w, `{"message":"body is missing"}`, http.StatusUnprocessableEntity)
			return
		}
		a.nextID++
		c.ID = a.nextID
		a.comments = append(a.comments, c)
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(c)
	case m != nil && (r.Method == http.MethodPatch || r.Method == http.MethodPut):
		id, _ := strconv.Atoi(m[1])
		var c comment
		if err := json.NewDecoder(r.Body).Decode(&c); err != nil || c.Body == "" {
			http.Error(w, `{"message":"body is missing"}`, http.StatusUnprocessableEntity)
			return
		}
		for i := range a.comments {
			if a.comments[i].ID == id {
				a.comments[i].Body = c.Body
				_ = json.NewEncoder(w).Encode(a.comments[i])
				return
			}
		}
		http.Error(w, `{"message":"Not Found"}`, http.StatusNotFound)
	default:
		http.Error(w, `{"message":"Not Found"}`, http.StatusNotFound)
	}
}

// seed adds n comments by other people, one of them quoting an earlier
// plan comment's marker.
func (a *commentAPI) seed(n int) {
	for i := range n {
		a.nextID++
		body := fmt.Sprintf("review remark %d", i)
		if i == 3 {
			body = "> <!-- swarmsync-plan prod -->\n> ### swarmsync plan for `prod`\n\nwhy this?"
		}
		a.comments = append(a.comments, comment{ID: a.nextID, Body: body})
	}
}

func (a *commentAPI) snapshot() ([]comment, []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]comment(nil), a.comments...), append([]string(nil), a.calls...)
}

// ciWorld is a spec repository with a pull request's change, checked out as
// a CI job sees it, and the swarmsync binary on PATH.
type ciWorld struct {
	origin   *gitserve.Repo
	checkout string
	observed string
	env      []string
}

// cluster.yaml of the fixture workers-scale-up at a given workers count.
func ciSpec(t *testing.T, workers int) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(planFixtures, "no-changes", "cluster.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "  web:\n    count: 3", fmt.Sprintf("  web:\n    count: %d", workers), 1)
	if !strings.Contains(s, fmt.Sprintf("count: %d", workers)) {
		t.Fatal("fixture no-changes/cluster.yaml changed shape")
	}
	return s
}

func newCIWorld(t *testing.T) *ciWorld {
	t.Helper()
	testenv.NeedCommands(t, "git", "sh", "curl", "jq")
	dir := t.TempDir()
	w := &ciWorld{origin: gitserve.NewRepo(t, filepath.Join(dir, "origin"))}
	w.origin.Commit(map[string]string{"clusters/cluster.yaml": ciSpec(t, 3), "README": "specs\n"}, "prod: 3 web workers")
	w.observed = filepath.Join(planFixtures, "no-changes", "observed.json")

	bin := filepath.Join(dir, "bin")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(self, filepath.Join(bin, "swarmsync")); err != nil {
		t.Fatal(err)
	}
	w.env = append(gitserve.Env(), "PATH="+bin+":"+os.Getenv("PATH"), "HOME="+dir, "XDG_CACHE_HOME="+filepath.Join(dir, "cache"))
	return w
}

// push commits the spec with the given workers count on the pull request's
// branch and checks out that commit as CI does (a shallow clone at a
// detached HEAD); it returns the commit.
func (w *ciWorld) push(t *testing.T, workers int) string {
	t.Helper()
	w.origin.Git("checkout", "-q", "-B", "change")
	commit := w.origin.Commit(map[string]string{"clusters/cluster.yaml": ciSpec(t, workers)}, fmt.Sprintf("prod: %d web workers", workers))
	w.checkout = filepath.Join(t.TempDir(), "checkout")
	gitserve.Git(t, filepath.Dir(w.checkout), nil, "clone", "-q", "--depth", "1", "--branch", "change", "file://"+w.origin.Dir, w.checkout)
	gitserve.Git(t, w.checkout, nil, "checkout", "-q", "--detach", commit)
	return commit
}

// run runs the script in the checkout with extra environment; it returns
// the exit code and the combined output.
func (w *ciWorld) run(t *testing.T, extra ...string) (int, string) {
	t.Helper()
	cmd := exec.Command("sh", filepath.Join(mustAbs(t, prPlanScript)), "--repo", ".", "--path", "clusters", "--cluster", "prod", "--observed", mustAbs(t, w.observed))
	cmd.Dir = w.checkout
	cmd.Env = append(append([]string(nil), w.env...), extra...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %s: %v", prPlanScript, err)
	}
	return code, string(out)
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// ours returns the comments whose body starts with the plan marker.
func ours(cs []comment) []comment {
	var out []comment
	for _, c := range cs {
		if strings.HasPrefix(c.Body, "<!-- swarmsync-plan prod -->\n") {
			out = append(out, c)
		}
	}
	return out
}

func countCalls(calls []string, prefix string) int {
	n := 0
	for _, c := range calls {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

// TestPRPlanScript runs the script as GitHub Actions and GitLab CI would:
// the first run on a change creates one comment with the plan; a second push
// updates that same comment (found on the second page of comments, past a
// reply quoting it); a plan that fails posts its error and exits 1.
func TestPRPlanScript(t *testing.T) {
	for _, ci := range []struct {
		name             string
		header, value    string
		env              func(url string) []string
		updateMethod     string
		commentsPathPart string
	}{
		{
			name: "github", header: "Authorization", value: "Bearer gh-token", updateMethod: "PATCH",
			env: func(url string) []string {
				return []string{"GITHUB_ACTIONS=true", "GITHUB_TOKEN=gh-token", "GITHUB_API_URL=" + url, "GITHUB_REPOSITORY=acme/specs"}
			},
		},
		{
			name: "gitlab", header: "PRIVATE-TOKEN", value: "gl-token", updateMethod: "PUT",
			env: func(url string) []string {
				return []string{"GITLAB_CI=true", "SWARMSYNC_GITLAB_TOKEN=gl-token", "CI_API_V4_URL=" + url + "/api/v4", "CI_PROJECT_ID=42", "CI_MERGE_REQUEST_IID=7"}
			},
		},
	} {
		t.Run(ci.name, func(t *testing.T) {
			w := newCIWorld(t)
			api := &commentAPI{t: t, header: ci.header, value: ci.value}
			api.seed(120) // more than a page of other people's comments
			srv := httptest.NewServer(api)
			defer srv.Close()
			env := ci.env(srv.URL)
			if ci.name == "github" {
				// The pull-request number comes from the event file Actions writes.
				event := filepath.Join(t.TempDir(), "event.json")
				if err := os.WriteFile(event, []byte(`{"pull_request": {"number": 7}}`), 0o644); err != nil {
					t.Fatal(err)
				}
				outputs := filepath.Join(t.TempDir(), "outputs")
				env = append(env, "GITHUB_EVENT_PATH="+event, "GITHUB_OUTPUT="+outputs)
				defer func() {
					b, _ := os.ReadFile(outputs)
					if got := string(b); got != "changes=true\nchanges=true\nchanges=error\n" {
						t.Errorf("GITHUB_OUTPUT after three runs = %q", got)
					}
				}()
			}

			// First push: 3 → 5 workers. One comment is created.
			c1 := w.push(t, 5)
			code, out := w.run(t, env...)
			if code != 0 {
				t.Fatalf("first run exited %d:\n%s", code, out)
			}
			cs, calls := api.snapshot()
			mine := ours(cs)
			if len(mine) != 1 || countCalls(calls, "POST ") != 1 {
				t.Fatalf("after the first run: %d plan comments, calls %v\n%s", len(mine), calls, out)
			}
			first := mine[0]
			for _, want := range []string{"### swarmsync plan for `prod`", "**Plan: 2 to launch", c1[:7], "```mermaid\nflowchart TD\n", "<details>"} {
				if !strings.Contains(first.Body, want) {
					t.Errorf("first comment lacks %q:\n%s", want, first.Body)
				}
			}
			if !strings.Contains(out, fmt.Sprintf("created comment %d on %s request 7", first.ID, ci.name)) {
				t.Errorf("the script does not say which comment it created:\n%s", out)
			}

			// Second push: 5 → 4 workers, gated. The same comment is updated.
			c2 := w.push(t, 4)
			code, out = w.run(t, append(env, "SWARMSYNC_FAIL_ON_CHANGES=1")...)
			if code != 2 {
				t.Fatalf("second run (changes, gated) exited %d, want 2:\n%s", code, out)
			}
			cs, calls = api.snapshot()
			mine = ours(cs)
			if len(mine) != 1 || mine[0].ID != first.ID || len(cs) != 121 {
				t.Fatalf("after the second run: plan comments %+v, %d comments in all (want the first one updated, 121 in all)", mine, len(cs))
			}
			if countCalls(calls, "POST ") != 1 || countCalls(calls, ci.updateMethod+" ") != 1 {
				t.Errorf("calls: %v (want one create, then one %s)", calls, ci.updateMethod)
			}
			if !strings.Contains(mine[0].Body, c2[:7]) || !strings.Contains(mine[0].Body, "**Plan: 1 to launch") || strings.Contains(mine[0].Body, c1[:7]) {
				t.Errorf("the updated comment does not show the second push's plan:\n%s", mine[0].Body)
			}
			if !strings.Contains(cs[3].Body, "why this?") {
				t.Errorf("a reply quoting the plan was changed: %q", cs[3].Body)
			}

			// A broken spec: the comment says why, the job fails.
			w.origin.Git("checkout", "-q", "change")
			w.origin.Commit(map[string]string{"clusters/cluster.yaml": strings.Replace(ciSpec(t, 4), "count: 3\n", "count: 4\n", 1)}, "prod: 4 managers")
			w.checkout = filepath.Join(t.TempDir(), "checkout")
			gitserve.Git(t, filepath.Dir(w.checkout), nil, "clone", "-q", "--depth", "1", "--branch", "change", "file://"+w.origin.Dir, w.checkout)
			code, out = w.run(t, env...)
			if code != 1 {
				t.Fatalf("run on an invalid spec exited %d, want 1:\n%s", code, out)
			}
			cs, _ = api.snapshot()
			mine = ours(cs)
			if len(mine) != 1 || !strings.Contains(mine[0].Body, "### swarmsync plan failed") || !strings.Contains(mine[0].Body, "managers.count") {
				t.Errorf("after a failed plan: %+v", mine)
			}
		})
	}
}

// TestPRPlanScriptRefusesWithoutCI checks that the script names what is
// missing instead of posting anywhere.
func TestPRPlanScriptRefusesWithoutCI(t *testing.T) {
	w := newCIWorld(t)
	w.push(t, 5)
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{nil, "neither GitHub Actions (GITHUB_ACTIONS=true) nor GitLab CI (GITLAB_CI=true)"},
		{[]string{"GITHUB_ACTIONS=true", "GITHUB_REPOSITORY=acme/specs"}, "GITHUB_TOKEN is not set: give it a token"},
		{[]string{"GITHUB_ACTIONS=true", "GITHUB_TOKEN=x", "GITHUB_REPOSITORY=acme/specs"}, "no pull-request number"},
		{[]string{"GITLAB_CI=true", "SWARMSYNC_GITLAB_TOKEN=x", "CI_API_V4_URL=http://127.0.0.1:1", "CI_PROJECT_ID=1"}, "run in a merge request pipeline"},
	} {
		env := []string{"GITHUB_ACTIONS=", "GITLAB_CI=", "GITHUB_TOKEN=", "GITHUB_EVENT_PATH="}
		code, out := w.run(t, append(env, tc.env...)...)
		if code != 1 || !strings.Contains(out, tc.want) {
			t.Errorf("env %v: exit %d, output %q; want exit 1 and %q", tc.env, code, out, tc.want)
		}
	}
}

// TestCIExampleFiles checks that the CI files are well-formed YAML and run
// the tested script with a cluster named.
func TestCIExampleFiles(t *testing.T) {
	for _, name := range []string{"github-actions.yml", "gitlab-ci.yml"} {
		b, err := os.ReadFile(filepath.Join("../../examples/ci", name))
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := yaml.Unmarshal(b, &doc); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if !regexp.MustCompile(`sh ci/swarmsync-pr-plan --repo \. --path clusters --cluster \S+`).Match(b) {
			t.Errorf("%s does not run ci/swarmsync-pr-plan with --repo, --path and --cluster", name)
		}
	}
}
