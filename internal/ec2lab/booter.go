package ec2lab

import (
	"bytes"
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/swarmsync/swarmsync/internal/ec2sim"
	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/providers/local"
)

//go:embed shims/curl shims/systemctl
var shimFS embed.FS

// TagInstanceID is the launch tag that carries the EC2 instance id to the
// local machine; providers/local makes it the engine label.
const TagInstanceID = "ec2lab:instance-id"

// Options configure a Booter.
type Options struct {
	// StateDir holds the local provider's state (keep it short: unix
	// socket paths below it must stay under 108 bytes), the shims (bin/)
	// and every machine's /etc/docker (m/). The caller creates it and
	// removes it after Close.
	StateDir string
	// Subnet is the lab network of the machines (e.g. 10.247.21.0/24):
	// their addresses become the instances' private IPs.
	Subnet string
	// Cluster names the machines' network in the local provider.
	Cluster string
	// DockerdEnv are extra environment entries for every dockerd.
	DockerdEnv []string
	// StopTimeout bounds a dockerd's graceful stop (default 30s).
	StopTimeout time.Duration
	// Logger receives progress (never user data). Default: discard.
	Logger *slog.Logger
}

// Booter is an ec2sim.Booter whose instances are local machines.
type Booter struct {
	cloud    *local.Cloud
	cluster  string
	dir      string
	shims    string
	realCurl string
	log      *slog.Logger

	mu       sync.Mutex
	machines map[string]machine // by EC2 instance id
	waits    map[string]*bootWait
	stopErrs []error
}

// bootWait is closed once an instance's boot has ended, with err set when
// it failed.
type bootWait struct {
	done chan struct{}
	err  error
}

// machine is one booted instance.
type machine struct {
	localID, privateIP, etc string
}

var _ ec2sim.Booter = (*Booter)(nil)

// New returns a Booter whose machines live under opts.StateDir. It needs
// root, dockerd and the namespace tools (see local.New) and /etc/docker.
func New(opts Options) (*Booter, error) {
	if opts.StateDir == "" || opts.Subnet == "" || opts.Cluster == "" {
		return nil, errors.New("failed to create ec2lab booter: StateDir, Subnet and Cluster are required")
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = 30 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for _, tool := range []string{"mount", "unshare"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("failed to create ec2lab booter: needs %s (install util-linux): %w", tool, err)
		}
	}
	// The user data's /etc/docker is bind-mounted over the host's, which
	// must therefore exist (it is never written).
	if fi, err := os.Stat("/etc/docker"); err != nil || !fi.IsDir() {
		return nil, errors.New("failed to create ec2lab booter: /etc/docker must exist as a mount point for the machines' own /etc/docker (install docker.io)")
	}
	cloud, err := local.New(local.Config{
		StateDir: opts.StateDir, Subnet: opts.Subnet,
		DockerdEnv: opts.DockerdEnv, PollInterval: 100 * time.Millisecond,
		StopTimeout: opts.StopTimeout, EngineLabelTag: TagInstanceID, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	b := &Booter{
		cloud: cloud, cluster: opts.Cluster, dir: opts.StateDir,
		shims: filepath.Join(opts.StateDir, "bin"), log: log,
		machines: map[string]machine{}, waits: map[string]*bootWait{},
	}
	b.realCurl, _ = exec.LookPath("curl")
	if err := b.writeShims(); err != nil {
		return nil, err
	}
	return b, nil
}

func (b *Booter) writeShims() error {
	if err := os.MkdirAll(b.shims, 0o755); err != nil {
		return fmt.Errorf("failed to create shim directory: %w", err)
	}
	for _, name := range []string{"curl", "systemctl"} {
		data, err := shimFS.ReadFile("shims/" + name)
		if err != nil {
			return fmt.Errorf("failed to read shim %s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(b.shims, name), data, 0o755); err != nil {
			return fmt.Errorf("failed to write shim %s: %w", name, err)
		}
	}
	return nil
}

// Local is the local provider that holds the machines (local ids).
func (b *Booter) Local() *local.Cloud { return b.cloud }

// LocalID returns the local machine id of EC2 instance id.
func (b *Booter) LocalID(id string) (string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	m, ok := b.machines[id]
	return m.localID, ok
}

// Endpoint returns the Docker endpoint of EC2 instance id's engine.
func (b *Booter) Endpoint(id string) (string, bool) {
	lid, ok := b.LocalID(id)
	if !ok {
		return "", false
	}
	return b.cloud.Endpoint(lid), true
}

// wait returns the boot wait of instance id. Callers hold mu.
func (b *Booter) wait(id string) *bootWait {
	w, ok := b.waits[id]
	if !ok {
		w = &bootWait{done: make(chan struct{})}
		b.waits[id] = w
	}
	return w
}

// WaitEndpoint waits until EC2 instance id has booted and returns its
// Docker endpoint: what a dialer does with an instance that is still
// pending.
func (b *Booter) WaitEndpoint(ctx context.Context, id string) (string, error) {
	b.mu.Lock()
	w := b.wait(id)
	b.mu.Unlock()
	select {
	case <-ctx.Done():
		return "", fmt.Errorf("failed to wait for instance %s to boot: %w", id, ctx.Err())
	case <-w.done:
	}
	if w.err != nil {
		return "", w.err
	}
	if ep, ok := b.Endpoint(id); ok {
		return ep, nil
	}
	return "", fmt.Errorf("instance %s has no lab machine any more", id)
}

// Boot starts a machine for inst and its user data. It returns when the
// machine's dockerd answers and the user data has started, with the
// machine's address as the private IP.
func (b *Booter) Boot(ctx context.Context, inst ec2sim.Instance, userData []byte) (ip string, err error) {
	defer func() {
		b.mu.Lock()
		w := b.wait(inst.ID)
		w.err = err
		close(w.done)
		b.mu.Unlock()
	}()
	etc := filepath.Join(b.dir, "m", inst.ID, "etc-docker")
	if err := os.MkdirAll(etc, 0o700); err != nil {
		return "", fmt.Errorf("failed to create /etc/docker of %s: %w", inst.ID, err)
	}
	var script []byte
	if len(userData) > 0 {
		if script, err = b.wrap(inst, etc, userData); err != nil {
			return "", err
		}
	}
	group := inst.Tags[providers.TagGroup]
	if group == "" {
		group = "untagged"
	}
	ins, err := b.cloud.Launch(ctx, providers.LaunchRequest{
		Cluster: b.cluster, Group: group, Count: 1,
		Image: inst.ImageID, InstanceType: inst.InstanceType,
		Tags:     map[string]string{TagInstanceID: inst.ID, providers.TagName: inst.ID},
		UserData: script,
		// One machine per instance, even if a boot is retried.
		IdempotencyToken: inst.ID,
	})
	if err != nil {
		return "", fmt.Errorf("failed to boot %s: %w", inst.ID, err)
	}
	m := machine{localID: ins[0].ID, privateIP: ins[0].PrivateIP, etc: etc}
	b.mu.Lock()
	b.machines[inst.ID] = m
	b.mu.Unlock()
	b.log.Info("ec2lab booted", "instance", inst.ID, "machine", m.localID, "ip", m.privateIP)
	return m.privateIP, nil
}

// wrap returns the script the machine runs: it enters a private mount
// namespace with the machine's own /etc/docker, puts the shims first on
// PATH, sets what the metadata service answers, and runs the user data
// with the interpreter its #! line names (sh without one). The user data
// reaches the interpreter through a here-document on a descriptor, never a
// file.
func (b *Booter) wrap(inst ec2sim.Instance, etc string, userData []byte) ([]byte, error) {
	interp, err := interpreter(userData)
	if err != nil {
		return nil, fmt.Errorf("failed to boot %s: %w", inst.ID, err)
	}
	token, err := randomHex(16)
	if err != nil {
		return nil, err
	}
	eof, err := randomHex(12)
	if err != nil {
		return nil, err
	}
	eof = "EC2LAB_USER_DATA_" + eof
	if bytes.Contains(userData, []byte(eof)) {
		return nil, fmt.Errorf("failed to boot %s: user data contains the here-document delimiter", inst.ID)
	}
	var w bytes.Buffer
	fmt.Fprintf(&w, "set -eu\n")
	fmt.Fprintf(&w, "exec unshare --mount --propagation private -- sh -c 'mount --bind \"$1\" /etc/docker && shift && exec \"$@\"' sh %s \\\n", shellQuote(etc))
	fmt.Fprintf(&w, "  env -u SWARMSYNC_PRIVATE_IP PATH=%s \\\n", shellQuote(b.shims+":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"))
	fmt.Fprintf(&w, "  EC2LAB_INSTANCE_ID=%s EC2LAB_LOCAL_IPV4=\"$SWARMSYNC_PRIVATE_IP\" EC2LAB_ZONE=%s \\\n", shellQuote(inst.ID), shellQuote(inst.Zone))
	fmt.Fprintf(&w, "  EC2LAB_IMDS_TOKEN=%s EC2LAB_REAL_CURL=%s \\\n", token, shellQuote(b.realCurl))
	fmt.Fprintf(&w, "  %s /dev/fd/4 4<<'%s'\n", interp, eof)
	w.Write(userData)
	if len(userData) > 0 && userData[len(userData)-1] != '\n' {
		w.WriteByte('\n')
	}
	fmt.Fprintf(&w, "%s\n", eof)
	return w.Bytes(), nil
}

// interpreter returns the (quoted) command line of the user data's #!
// line, or sh. Cloud-init's other formats are refused.
func interpreter(userData []byte) (string, error) {
	first, _, _ := bytes.Cut(userData, []byte("\n"))
	line := strings.TrimSpace(string(first))
	switch {
	case strings.HasPrefix(line, "#!"):
		fields := strings.Fields(strings.TrimPrefix(line, "#!"))
		if len(fields) == 0 {
			return "", errors.New("the user data's #! line names no interpreter")
		}
		for i, f := range fields {
			fields[i] = shellQuote(f)
		}
		return strings.Join(fields, " "), nil
	case strings.HasPrefix(line, "#cloud-config"), strings.HasPrefix(line, "#include"),
		strings.HasPrefix(strings.ToLower(line), "content-type:"), strings.HasPrefix(line, "MIME-Version:"):
		return "", errors.New("ec2lab runs only shell-script user data, not cloud-init directives")
	}
	return "sh", nil
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func randomHex(n int) (string, error) {
	buf := make([]byte, n)
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("failed to generate a random token: %w", err)
	}
	return hex.EncodeToString(buf), nil
}

// Stop terminates the machine of EC2 instance id. Errors are kept for
// Close.
func (b *Booter) Stop(id string) {
	b.mu.Lock()
	m, ok := b.machines[id]
	b.mu.Unlock()
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	err := b.cloud.Terminate(ctx, b.cluster, []string{m.localID})
	if err == nil {
		err = os.RemoveAll(filepath.Dir(m.etc))
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil {
		b.stopErrs = append(b.stopErrs, fmt.Errorf("failed to stop %s: %w", id, err))
		return
	}
	delete(b.machines, id)
	b.log.Info("ec2lab stopped", "instance", id, "machine", m.localID)
}

// Close terminates every machine still running, removes the shims and the
// machines' /etc/docker, and reports what failed, including earlier Stop
// failures. The local provider's records stay for the caller (a leak check)
// to inspect. Close the emulator first so that no boot is under way.
func (b *Booter) Close(ctx context.Context) error {
	var errs []error
	ins, err := b.cloud.Instances(ctx, b.cluster)
	errs = append(errs, err)
	var ids []string
	for _, in := range ins {
		if in.State != providers.StateTerminated {
			ids = append(ids, in.ID)
		}
	}
	if len(ids) > 0 {
		errs = append(errs, b.cloud.Terminate(ctx, b.cluster, ids))
	}
	b.mu.Lock()
	errs = append(errs, b.stopErrs...)
	b.machines = map[string]machine{}
	b.mu.Unlock()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return errors.Join(os.RemoveAll(b.shims), os.RemoveAll(filepath.Join(b.dir, "m")))
}

// Logs returns the dockerd log paths of the machines, for a failing test
// to show. User-data logs are left out: they may hold join tokens.
func (b *Booter) Logs() []string {
	logs, _ := filepath.Glob(filepath.Join(b.dir, "instances", "*", "dockerd.log"))
	return logs
}
