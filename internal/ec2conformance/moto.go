package ec2conformance

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Moto is a moto_server process this package started on loopback.
type Moto struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:40123.
	URL string

	cmd  *exec.Cmd
	mu   sync.Mutex
	logs bytes.Buffer
	done chan struct{}
}

// StartMoto starts moto_server on a free loopback port and waits (bounded
// by ctx) until it answers HTTP.
func StartMoto(ctx context.Context) (*Moto, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	m := &Moto{URL: "http://127.0.0.1:" + strconv.Itoa(port), done: make(chan struct{})}
	m.cmd = exec.Command("moto_server", "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	m.cmd.Stdout = &lockedWriter{m: m}
	m.cmd.Stderr = &lockedWriter{m: m}
	// Its own process group, so Close ends moto and any child it forks.
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := m.cmd.Start(); err != nil {
		return nil, fmt.Errorf("failed to start moto_server: %w", err)
	}
	go func() { _ = m.cmd.Wait(); close(m.done) }()

	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	client := &http.Client{Timeout: time.Second}
	for {
		resp, err := client.Get(m.URL + "/")
		if err == nil {
			resp.Body.Close()
			return m, nil
		}
		select {
		case <-ctx.Done():
			m.Close()
			return nil, fmt.Errorf("failed to reach moto_server at %s: %w (output: %s)", m.URL, ctx.Err(), m.Logs())
		case <-m.done:
			return nil, fmt.Errorf("failed to start moto_server: it exited (output: %s)", m.Logs())
		case <-tick.C:
		}
	}
}

// Close ends the moto_server process group this package started and waits
// for it to exit.
func (m *Moto) Close() {
	if m.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
		<-m.done
	}
}

// Logs returns what moto_server printed so far.
func (m *Moto) Logs() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.logs.String()
}

type lockedWriter struct{ m *Moto }

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.m.mu.Lock()
	defer w.m.mu.Unlock()
	if w.m.logs.Len() > 1<<20 { // keep the tail bounded
		w.m.logs.Reset()
	}
	return w.m.logs.Write(p)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("failed to find a free loopback port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
