package gitserve

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/swarmsync/swarmsync/internal/testenv"
)

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	return freePortOn(t, "127.0.0.1")
}

// freePortOn returns a TCP port of host that was free a moment ago.
func freePortOn(t testing.TB, host string) int {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitListening polls until addr accepts connections, the process exits, or
// ten seconds pass.
func waitListening(t testing.TB, addr string, exited <-chan struct{}, logs *lockedBuffer) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			t.Fatalf("server for %s exited early:\n%s", addr, logs.snapshot().String())
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not listen on %s within 10s:\n%s", addr, logs.snapshot().String())
		}
	}
}

// lockedBuffer is a bytes.Buffer safe for a process's output.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) snapshot() *bytes.Buffer {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.NewBuffer(append([]byte(nil), l.b.Bytes()...))
}

// startProcess runs cmd until the test ends, stopping it by its pid.
func startProcess(t testing.TB, cmd *exec.Cmd, addr string) {
	t.Helper()
	logs := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	// Its own process group, so that stopping it also stops the children
	// it forks (git daemon runs git-daemon; sshd forks per connection).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	})
	waitListening(t, addr, exited, logs)
}

// Daemon is a running git daemon.
type Daemon struct {
	// URL is the base URL; append the repository's path below the base
	// directory (git://127.0.0.1:PORT/specs.git).
	URL string
}

// StartDaemon serves every repository under base with git daemon on a
// loopback port until the test ends.
func StartDaemon(t testing.TB, base string) *Daemon {
	t.Helper()
	return StartDaemonOn(t, base, "127.0.0.1")
}

// StartDaemonOn is StartDaemon listening on host (an IPv4 address), which
// must be loopback or the host's address on a lab bridge, for clients
// inside lab machines' network namespaces.
func StartDaemonOn(t testing.TB, base, host string) *Daemon {
	t.Helper()
	testenv.NeedCommands(t, "git")
	port := freePortOn(t, host)
	cmd := exec.Command("git", "daemon", "--reuseaddr", "--export-all", "--informative-errors",
		"--listen="+host, fmt.Sprintf("--port=%d", port), "--base-path="+base, base)
	cmd.Env = Env()
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	startProcess(t, cmd, addr)
	return &Daemon{URL: "git://" + addr + "/"}
}

// Request is one request the HTTP server saw.
type Request struct {
	Method string
	Path   string // with the query
	Status int
}

// HTTP is a running smart-HTTP git server.
type HTTP struct {
	// URL is the base URL; append the repository's path below the base
	// directory (http://127.0.0.1:PORT/specs.git).
	URL string

	mu        sync.Mutex
	reqs      []Request
	onRequest func(Request)
}

// OnRequest sets a function called after every request (for example to
// log it to a file a script can read).
func (h *HTTP) OnRequest(f func(Request)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.onRequest = f
}

// StartHTTP serves every repository under base over smart HTTP (git
// http-backend through net/http/cgi) on loopback until the test ends. With
// a non-empty user, every request needs basic auth with user and password.
func StartHTTP(t testing.TB, base, user, password string) *HTTP {
	t.Helper()
	srv, h := NewHTTPServer(t, base, user, password)
	t.Cleanup(srv.Close)
	return h
}

// NewHTTPServer is StartHTTP for callers that manage the server's life.
func NewHTTPServer(t testing.TB, base, user, password string) (*httptest.Server, *HTTP) {
	t.Helper()
	testenv.NeedCommands(t, "git")
	backend, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Fatalf("git --exec-path: %v", err)
	}
	h := &HTTP{}
	cgiHandler := &cgi.Handler{
		Path: filepath.Join(strings.TrimSpace(string(backend)), "git-http-backend"),
		Env:  append(Env(), "GIT_PROJECT_ROOT="+base, "GIT_HTTP_EXPORT_ALL=1"),
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			req := Request{Method: r.Method, Path: r.URL.RequestURI(), Status: rec.status}
			h.mu.Lock()
			h.reqs = append(h.reqs, req)
			f := h.onRequest
			h.mu.Unlock()
			if f != nil {
				f(req)
			}
		}()
		if user != "" {
			u, p, ok := r.BasicAuth()
			if !ok || u != user || p != password {
				rec.Header().Set("WWW-Authenticate", `Basic realm="git"`)
				http.Error(rec, "authentication required", http.StatusUnauthorized)
				return
			}
		}
		cgiHandler.ServeHTTP(rec, r)
	}))
	h.URL = srv.URL + "/"
	return srv, h
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// Requests returns the requests seen so far.
func (h *HTTP) Requests() []Request {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Request(nil), h.reqs...)
}

// Reset forgets the requests seen so far.
func (h *HTTP) Reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reqs = nil
}

// Fetches counts the pack transfers (POST …/git-upload-pack) among reqs.
func Fetches(reqs []Request) int {
	n := 0
	for _, r := range reqs {
		if r.Method == http.MethodPost && strings.HasSuffix(r.Path, "/git-upload-pack") {
			n++
		}
	}
	return n
}

// SSHD is a running sshd that lets the current user (root) in with a
// generated client key.
type SSHD struct {
	Addr       string // 127.0.0.1:PORT
	Port       int
	ClientKey  string // private key file accepted by the server
	KnownHosts string // known_hosts file holding the server's host key
	OtherKey   string // a private key the server does not accept
}

// URL returns ssh://root@127.0.0.1:PORT/<abs path>.
func (s *SSHD) URL(absPath string) string {
	return fmt.Sprintf("ssh://root@%s%s", s.Addr, absPath)
}

// StartSSHD runs /usr/sbin/sshd on a loopback port with a temporary host
// key, authorized_keys and configuration until the test ends. It needs
// root.
func StartSSHD(t testing.TB) *SSHD {
	t.Helper()
	testenv.NeedRoot(t)
	testenv.NeedCommands(t, "/usr/sbin/sshd", "ssh-keygen", "git-upload-pack")
	dir := t.TempDir()
	keygen := func(name string) string {
		p := filepath.Join(dir, name)
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", p).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v\n%s", err, out)
		}
		return p
	}
	hostKey, clientKey, otherKey := keygen("host_key"), keygen("client_key"), keygen("other_key")
	pub, err := os.ReadFile(clientKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	hostPub, err := os.ReadFile(hostKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(hostPub))
	known := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(known, fmt.Appendf(nil, "[127.0.0.1]:%d %s %s\n", port, fields[0], fields[1]), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "sshd_config")
	conf := fmt.Sprintf(`HostKey %s
AuthorizedKeysFile %s
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
PidFile none
LogLevel VERBOSE
`, hostKey, filepath.Join(dir, "authorized_keys"))
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	// sshd insists on its privilege-separation directory.
	if _, err := os.Stat("/run/sshd"); os.IsNotExist(err) {
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", cfg, "-p", fmt.Sprint(port), "-o", "ListenAddress=127.0.0.1")
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	startProcess(t, cmd, addr)
	return &SSHD{Addr: addr, Port: port, ClientKey: clientKey, KnownHosts: known, OtherKey: otherKey}
}
