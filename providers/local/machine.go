package local

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/swarmsync/swarmsync/providers"
)

// machine is the set of paths that make up one instance's dockerd.
type machine struct {
	dir string
}

func (m machine) socket() string   { return filepath.Join(m.dir, "docker.sock") }
func (m machine) endpoint() string { return "unix://" + m.socket() }

// userDataFIFO is where a staged user data script waits to be released.
func (m machine) userDataFIFO() string { return filepath.Join(m.dir, "user-data.release") }

// baseEnv is the environment of processes started inside a machine: the
// host's, minus anything that would point at another Docker engine.
func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "DOCKER_") || strings.HasPrefix(kv, "SWARMSYNC_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// startDockerd starts the instance's dockerd detached (its own session), in
// its network namespace and a fresh UTS namespace with the instance id as
// hostname, logging to dockerd.log. It returns the dockerd pid and a channel
// closed when that process exits (while this process is its parent).
func (c *Cloud) startDockerd(r record) (int, <-chan struct{}, error) {
	m := c.machine(r.ID)
	for _, d := range []string{"data", "exec"} {
		if err := os.MkdirAll(filepath.Join(m.dir, d), 0o700); err != nil {
			return 0, nil, fmt.Errorf("failed to create directories of %s: %w", r.ID, err)
		}
	}
	_ = os.Remove(m.socket()) // a stale socket from a stopped run
	// An own (empty) config file: the host's /etc/docker/daemon.json is
	// for the host's engine and may clash with our flags.
	conf := filepath.Join(m.dir, "daemon.json")
	if err := os.WriteFile(conf, []byte("{}\n"), 0o600); err != nil {
		return 0, nil, fmt.Errorf("failed to write dockerd config of %s: %w", r.ID, err)
	}
	logf, err := os.OpenFile(filepath.Join(m.dir, "dockerd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, nil, fmt.Errorf("failed to open dockerd log of %s: %w", r.ID, err)
	}
	defer logf.Close()
	label := r.ID
	if t := c.cfg.EngineLabelTag; t != "" && r.Tags[t] != "" {
		label = r.Tags[t]
	}
	args := []string{
		"--net=/var/run/netns/" + r.Netns,
		"unshare", "--uts", "--",
		"sh", "-c", `hostname "$1" && shift && exec "$@"`, "sh", r.ID,
		c.dockerd,
		"--config-file", conf,
		"--host", m.endpoint(),
		"--data-root", filepath.Join(m.dir, "data"),
		"--exec-root", filepath.Join(m.dir, "exec"),
		"--pidfile", filepath.Join(m.dir, "dockerd.pid"),
		"--label", providers.EngineLabelInstance + "=" + label,
	}
	args = append(args, c.cfg.DockerdArgs...)
	// nsenter (without --pid), unshare (without --fork) and sh all exec, so
	// the started process ends up being dockerd itself.
	cmd := exec.Command(c.nsenter, args...)
	cmd.Dir = "/"
	cmd.Env = append(baseEnv(), c.cfg.DockerdEnv...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, nil, fmt.Errorf("failed to start dockerd of %s: %w", r.ID, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	return cmd.Process.Pid, done, nil
}

// waitDockerd polls the instance's socket until dockerd answers /_ping.
func (c *Cloud) waitDockerd(ctx context.Context, id string, exited <-chan struct{}) error {
	sock := c.machine(id).socket()
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	defer hc.CloseIdleConnections()
	tick := time.NewTicker(c.cfg.PollInterval)
	defer tick.Stop()
	for {
		if pingOK(ctx, hc) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("failed to wait for dockerd of %s (see %s): %w", id, filepath.Join(c.machine(id).dir, "dockerd.log"), ctx.Err())
		case <-exited:
			return fmt.Errorf("dockerd of %s exited during start-up: %s", id, tail(filepath.Join(c.machine(id).dir, "dockerd.log"), 3))
		case <-tick.C:
		}
	}
}

func pingOK(ctx context.Context, hc *http.Client) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker/_ping", nil)
	if err != nil {
		return false
	}
	resp, err := hc.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// stageUserData starts the instance's user data holder: a detached shell in
// the instance's network namespace that holds the script as an inherited
// descriptor of an unlinked file (the script never stays on disk in
// readable form) and waits on the FIFO user-data.release until releaseUserData
// writes dockerd's pid there; it then removes the FIFO and runs the script
// with sh in dockerd's UTS namespace, with DOCKER_HOST pointing at the
// instance's dockerd. The holder outlives this process, so a launch
// interrupted between start-up and release can be completed by the next
// call. Output goes to user-data.log (mode 0600). It returns the holder's
// pid, which becomes the user data shell's.
func (c *Cloud) stageUserData(r record, script []byte) (int, error) {
	m := c.machine(r.ID)
	fifo := m.userDataFIFO()
	_ = os.Remove(fifo)
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		return 0, fmt.Errorf("failed to stage user data of %s: %w", r.ID, err)
	}
	f, err := os.CreateTemp(m.dir, ".user-data-*")
	if err != nil {
		return 0, fmt.Errorf("failed to stage user data of %s: %w", r.ID, err)
	}
	name := f.Name()
	defer f.Close()
	_, werr := f.Write(script)
	if werr == nil {
		_, werr = f.Seek(0, 0)
	}
	if rerr := os.Remove(name); werr == nil {
		werr = rerr
	}
	if werr != nil {
		return 0, fmt.Errorf("failed to stage user data of %s: %w", r.ID, werr)
	}
	logf, err := os.OpenFile(filepath.Join(m.dir, "user-data.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, fmt.Errorf("failed to open user data log of %s: %w", r.ID, err)
	}
	defer logf.Close()
	cmd := exec.Command(c.nsenter,
		"--net=/var/run/netns/"+r.Netns,
		"sh", "-c", `read -r pid < "$1" && rm -f "$1" && exec "$2" --uts="/proc/$pid/ns/uts" sh /dev/fd/3`,
		"sh", fifo, c.nsenter)
	cmd.Dir = m.dir
	cmd.Env = append(baseEnv(),
		"DOCKER_HOST="+m.endpoint(),
		"SWARMSYNC_PRIVATE_IP="+r.PrivateIP,
		"SWARMSYNC_INSTANCE_ID="+r.ID,
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{f}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("failed to start user data of %s: %w", r.ID, err)
	}
	go func() { _ = cmd.Wait() }()
	return cmd.Process.Pid, nil
}

// errUserDataLost: the holder of a staged user data script is gone before
// the script was released; the launch cannot be completed.
var errUserDataLost = errors.New("its user data holder is gone before the script ran")

// releaseUserData lets the staged user data of r run, once dockerd (r.PID)
// answers. Releasing user data that already ran is a no-op.
func (c *Cloud) releaseUserData(ctx context.Context, r record) error {
	fifo := c.machine(r.ID).userDataFIFO()
	tick := time.NewTicker(c.cfg.PollInterval)
	defer tick.Stop()
	for {
		// Non-blocking: ENXIO while no reader has the FIFO open (the
		// holder is still starting, or gone); ENOENT once released.
		f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil
		case err == nil:
			_, werr := fmt.Fprintf(f, "%d\n", r.PID)
			if cerr := f.Close(); werr == nil {
				werr = cerr
			}
			if werr != nil {
				return fmt.Errorf("failed to release user data of %s: %w", r.ID, werr)
			}
			return nil
		case !errors.Is(err, syscall.ENXIO):
			return fmt.Errorf("failed to release user data of %s: %w", r.ID, err)
		case !alive(r.UserDataPID):
			return fmt.Errorf("failed to release user data of %s: %w", r.ID, errUserDataLost)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("failed to release user data of %s: %w", r.ID, ctx.Err())
		case <-tick.C:
		}
	}
}

// alive reports whether pid is a running (not zombie) process.
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// Field 3 (after "pid (comm) ") is the state; Z and X are dead.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z' && s[i+2] != 'X'
	}
	return true
}

// ownedProcesses lists processes that belong to instance id: their command
// line mentions the instance directory (dockerd, its containerd and shims)
// or their environment carries SWARMSYNC_INSTANCE_ID=id (user data and its
// children). Nothing else on the host is ever signalled.
func (c *Cloud) ownedProcesses(id string) []int {
	dir := c.machine(id).dir + "/"
	envMark := []byte("SWARMSYNC_INSTANCE_ID=" + id + "\x00")
	entries, _ := os.ReadDir("/proc")
	var pids []int
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if bytes.Contains(cmdline, []byte(dir)) {
			pids = append(pids, pid)
			continue
		}
		environ, _ := os.ReadFile("/proc/" + e.Name() + "/environ")
		if bytes.Contains(environ, envMark) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// stopMachine stops the instance's dockerd gracefully (SIGTERM, then waits
// for it to exit: with running tasks this takes 15 s or more), escalating
// to SIGKILL after StopTimeout, then kills any process still owned by the
// instance (containerd, shims, user data).
func (c *Cloud) stopMachine(ctx context.Context, r record) error {
	pid := r.PID
	if pid > 0 && !c.ownsPID(r.ID, pid) {
		pid = 0 // the pid was reused by something else: not ours to signal
	}
	if pid > 0 && alive(pid) {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		graceCtx, cancel := context.WithTimeout(ctx, c.cfg.StopTimeout)
		err := c.waitGone(graceCtx, []int{pid})
		cancel()
		if err != nil && ctx.Err() != nil {
			return fmt.Errorf("failed to stop dockerd of %s: %w", r.ID, ctx.Err())
		}
	}
	pids := c.ownedProcesses(r.ID)
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	if err := c.waitGone(ctx, pids); err != nil {
		return fmt.Errorf("failed to stop processes of %s: %w", r.ID, err)
	}
	return nil
}

func (c *Cloud) ownsPID(id string, pid int) bool {
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return err == nil && bytes.Contains(cmdline, []byte(c.machine(id).dir+"/"))
}

func (c *Cloud) waitGone(ctx context.Context, pids []int) error {
	tick := time.NewTicker(c.cfg.PollInterval)
	defer tick.Stop()
	for {
		left := 0
		for _, p := range pids {
			if alive(p) {
				left++
			}
		}
		if left == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// unmountUnder detaches every mount below dir (dockerd leaves overlay and
// netns bind mounts behind when it is killed), deepest first.
func unmountUnder(dir string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("failed to read mounts: %w", err)
	}
	defer f.Close()
	var mounts []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		p := unescapeMount(fields[4])
		if strings.HasPrefix(p, dir+"/") {
			mounts = append(mounts, p)
		}
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i]) > len(mounts[j]) })
	var errs []error
	for _, p := range mounts {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("failed to unmount %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// unescapeMount decodes the octal escapes (\040 etc.) of /proc mountinfo.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// tail returns the last n lines of a log file, for start-up errors.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log)"
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
