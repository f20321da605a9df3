package local

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/swarmsync/swarmsync/providers"
)

// DefaultStateDir is where instances are recorded when Config.StateDir is empty.
const DefaultStateDir = "/var/lib/swarmsync/local"

// Zone is the availability zone every local instance reports.
const Zone = "local"

// maxSocketPath is the longest unix socket path Linux accepts (sun_path).
const maxSocketPath = 107

// Errors callers can test with errors.Is.
var (
	// ErrIdempotentParameterMismatch: an idempotency token was reused with
	// different launch parameters.
	ErrIdempotentParameterMismatch = providers.ErrTokenReused
	// ErrNotOwned: an instance id is unknown or not tagged with the cluster.
	ErrNotOwned = errors.New("instance is not tagged with the cluster")
)

// Config configures a local Cloud.
type Config struct {
	// StateDir holds instance records and machine directories.
	// Default DefaultStateDir. Keep it short: unix socket paths below it
	// must stay under 108 bytes.
	StateDir string
	// Subnet is the cluster's private IPv4 network (e.g. 10.231.0.0/24):
	// .1 is the bridge (gateway), instances get .2 upwards. Needed only
	// to Launch.
	Subnet string
	// Dockerd is the dockerd binary (default: "dockerd" from PATH).
	Dockerd string
	// DockerdArgs are extra dockerd flags for every machine.
	DockerdArgs []string
	// DockerdEnv are extra KEY=VALUE environment entries for every dockerd,
	// e.g. DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 where no registry is reachable.
	DockerdEnv []string
	// Now returns the current time (LaunchedAt, TerminatedAt). Default time.Now.
	Now func() time.Time
	// PollInterval is how often start-up and shutdown are polled (default 200ms).
	PollInterval time.Duration
	// StopTimeout is how long a dockerd gets to stop after SIGTERM before
	// it is killed (default 90s).
	StopTimeout time.Duration
	// RetainTerminated is how long terminated instances stay listed
	// (default 1h, like EC2).
	RetainTerminated time.Duration
	// Logger receives structured progress (never user data). Default: discard.
	Logger *slog.Logger
	// EngineLabelTag, when set, names a launch tag whose value (when the
	// request carries it) becomes the machine's engine label
	// swarmsync.instance instead of the local instance id: an emulated
	// cloud whose instances boot local machines links nodes to its own ids.
	EngineLabelTag string
	// NeighbourDir holds the host's neighbour table limits gc_thresh1/2/3
	// (default DefaultNeighbourDir). Launch raises them when the machines
	// may need more entries, or refuses naming the setting.
	NeighbourDir string
	// MaxParallelBoots bounds how many machines of one launch start at
	// once (default DefaultMaxParallelBoots): a hundred engines starting
	// and joining together on a small host starve the managers, and joins
	// time out.
	MaxParallelBoots int
}

// DefaultMaxParallelBoots is Config.MaxParallelBoots' default.
const DefaultMaxParallelBoots = 16

// Cloud is providers.Cloud on this host. Safe for concurrent use; mutations
// are serialised by a file lock in the state directory, so several processes
// may share one state directory.
type Cloud struct {
	cfg     Config
	st      store
	dockerd string
	nsenter string
	mu      sync.Mutex // serialises mutations within this process (flock is per fd)
}

var _ providers.Cloud = (*Cloud)(nil)

// New checks the host (root, dockerd and the namespace tools) and returns a
// Cloud over cfg.StateDir.
func New(cfg Config) (*Cloud, error) {
	if cfg.StateDir == "" {
		cfg.StateDir = DefaultStateDir
	}
	abs, err := filepath.Abs(cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("failed to resolve state directory %q: %w", cfg.StateDir, err)
	}
	cfg.StateDir = abs
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 200 * time.Millisecond
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 90 * time.Second
	}
	if cfg.RetainTerminated <= 0 {
		cfg.RetainTerminated = time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxParallelBoots <= 0 {
		cfg.MaxParallelBoots = DefaultMaxParallelBoots
	}
	if cfg.NeighbourDir == "" {
		cfg.NeighbourDir = DefaultNeighbourDir
	}
	if cfg.Subnet != "" {
		if _, err := parseSubnet(cfg.Subnet); err != nil {
			return nil, err
		}
	}
	// instances/l-xxxxxxxxxxxx/exec/containerd/containerd.sock.ttrpc is the longest socket.
	if n := len(cfg.StateDir) + len("/instances/l-000000000000/exec/containerd/containerd.sock.ttrpc"); n > maxSocketPath {
		return nil, fmt.Errorf("local state directory %q is too long: sockets below it would exceed %d bytes; use a shorter path", cfg.StateDir, maxSocketPath)
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("the local provider needs root (it creates network namespaces, a bridge and dockerd processes): run swarmsync as root")
	}
	c := &Cloud{cfg: cfg, st: store{dir: cfg.StateDir}}
	if cfg.Dockerd == "" {
		cfg.Dockerd = "dockerd"
	}
	if c.dockerd, err = exec.LookPath(cfg.Dockerd); err != nil {
		return nil, fmt.Errorf("the local provider needs dockerd (install docker.io): %w", err)
	}
	if c.nsenter, err = exec.LookPath("nsenter"); err != nil {
		return nil, fmt.Errorf("the local provider needs nsenter (install util-linux): %w", err)
	}
	for _, tool := range []string{"ip", "iptables", "unshare"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("the local provider needs %s (install iproute2, iptables, util-linux): %w", tool, err)
		}
	}
	return c, nil
}

// StateDir returns the absolute state directory.
func (c *Cloud) StateDir() string { return c.cfg.StateDir }

func (c *Cloud) machine(id string) machine { return machine{dir: c.st.instanceDir(id)} }

// Endpoint returns the Docker endpoint (unix socket URL) of instance id.
func (c *Cloud) Endpoint(id string) string { return c.machine(id).endpoint() }

// BridgeName returns the bridge that instances of cluster are attached to.
func (c *Cloud) BridgeName(cluster string) string { return bridgeName(c.cfg.StateDir, cluster) }

// ManagerEndpoints returns the Docker endpoints of the cluster's running
// instances in the managers group ("managers", as tagged by plan), in launch
// order: the candidates among which to look for the Swarm leader (see
// docker.FindLeader) when DOCKER_HOST is unset.
func (c *Cloud) ManagerEndpoints(ctx context.Context, cluster string) ([]string, error) {
	insts, err := c.Instances(ctx, cluster)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, in := range insts {
		if in.Group == "managers" && in.State == providers.StateRunning {
			out = append(out, c.Endpoint(in.ID))
		}
	}
	return out, nil
}

// Instances lists the cluster's instances, live ones and those terminated
// within RetainTerminated. A running instance whose dockerd has died is
// reported as stopped. Unless another call holds the state lock, it first
// completes calls that were interrupted (see resume).
func (c *Cloud) Instances(ctx context.Context, cluster string) ([]providers.Instance, error) {
	// Complete interrupted calls first, unless a call is under way (it
	// holds the lock and will).
	if lk, ok := c.st.tryLock(); ok {
		err := c.resume(ctx)
		lk.Unlock()
		if err != nil {
			return nil, err
		}
	}
	recs, err := c.st.records()
	if err != nil {
		return nil, err
	}
	now := c.cfg.Now()
	var out []providers.Instance
	for _, r := range recs {
		if r.Cluster != cluster {
			continue
		}
		if r.TerminatedAt != nil && now.Sub(*r.TerminatedAt) > c.cfg.RetainTerminated {
			continue
		}
		out = append(out, c.view(r))
	}
	return out, nil
}

// view turns a record into the Instance callers see.
func (c *Cloud) view(r record) providers.Instance {
	in := r.Instance
	in.Tags = maps.Clone(r.Tags)
	if in.State == providers.StateRunning && !(alive(r.PID) && c.ownsPID(r.ID, r.PID)) {
		in.State = providers.StateStopped
	}
	return in
}

// launchDigest is a digest of every parameter of a launch request.
func launchDigest(req providers.LaunchRequest) string {
	ud := sha256.Sum256(req.UserData)
	b, _ := json.Marshal(struct {
		providers.LaunchRequest
		UserData string
	}{req, hex.EncodeToString(ud[:])})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func newID() (string, error) {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("failed to generate instance id: %w", err)
	}
	return "l-" + hex.EncodeToString(b), nil
}

// crashHook, set by tests, is called at points where a killed process
// leaves work half done (see resume).
var crashHook func(point string)

func crashPoint(point string) {
	if crashHook != nil {
		crashHook(point)
	}
}

// Launch starts req.Count machines of a group. It returns once every
// machine's dockerd answers on its socket and its user data script has been
// started (not finished: joining the Swarm is awaited through the Swarm).
// The instances are running by then. The same IdempotencyToken with the same
// request returns the same instances; with a different request it fails with
// ErrIdempotentParameterMismatch. On failure, the machines of this launch are
// torn down again. If the process dies mid-launch, the next call of any
// process completes the launch or, where it cannot, terminates the
// instances (see resume); a re-run with the same token returns them.
func (c *Cloud) Launch(ctx context.Context, req providers.LaunchRequest) ([]providers.Instance, error) {
	switch {
	case req.Cluster == "":
		return nil, errors.New("failed to launch: the request names no cluster")
	case req.Group == "":
		return nil, errors.New("failed to launch: the request names no group")
	case req.Count < 1:
		return nil, fmt.Errorf("failed to launch: count %d must be at least 1", req.Count)
	case c.cfg.Subnet == "":
		return nil, errors.New("failed to launch: the local provider has no subnet configured (provider.local.subnet)")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	lk, err := c.st.lock()
	if err != nil {
		return nil, err
	}
	defer lk.Unlock()
	if err := c.resume(ctx); err != nil {
		return nil, err
	}

	digest := launchDigest(req)
	if req.IdempotencyToken != "" {
		prev, ok, err := c.st.readLaunch(req.Cluster, req.IdempotencyToken)
		if err != nil {
			return nil, fmt.Errorf("failed to read launch record: %w", err)
		}
		if ok {
			if prev.Request != digest {
				return nil, fmt.Errorf("failed to launch %d %s instance(s): %w", req.Count, req.Group, ErrIdempotentParameterMismatch)
			}
			return c.byIDs(prev.IDs)
		}
	}

	recs, err := c.st.records()
	if err != nil {
		return nil, err
	}
	perBridge := map[string]int{bridgeName(c.cfg.StateDir, req.Cluster): req.Count}
	for _, r := range recs {
		if r.TerminatedAt == nil {
			perBridge[r.Bridge]++
		}
	}
	if err := c.ensureNeighbourRoom(perBridge); err != nil {
		return nil, err
	}
	nw, err := c.ensureNetwork(ctx, req.Cluster)
	if err != nil {
		return nil, err
	}
	used := map[string]bool{}
	for _, r := range recs {
		if r.Bridge == nw.Bridge && r.TerminatedAt == nil {
			used[r.PrivateIP] = true
		}
	}
	sp, _ := parseSubnet(nw.Subnet)
	now := c.cfg.Now().UTC()
	batch := make([]record, req.Count)
	for i := range batch {
		id, err := newID()
		if err != nil {
			return nil, err
		}
		ip, err := sp.nextIP(used)
		if err != nil {
			return nil, fmt.Errorf("failed to launch: %w", err)
		}
		used[ip.String()] = true
		batch[i] = record{
			Instance: providers.Instance{
				ID: id, Cluster: req.Cluster, Group: req.Group,
				Config: req.Tags[providers.TagConfig], State: providers.StatePending,
				PrivateIP: ip.String(), Zone: Zone, LaunchedAt: now,
				Tags: withOwnerTags(req),
			},
			Netns: netnsName(id), VethHost: vethName(id), Bridge: nw.Bridge,
		}
		if err := c.st.writeRecord(batch[i]); err != nil {
			return nil, fmt.Errorf("failed to record instance: %w", err)
		}
	}
	ids := make([]string, len(batch))
	for i, r := range batch {
		ids[i] = r.ID
	}
	if req.IdempotencyToken != "" {
		if err := c.st.writeLaunch(req.Cluster, req.IdempotencyToken, launchRecord{Request: digest, IDs: ids}); err != nil {
			return nil, fmt.Errorf("failed to record launch: %w", err)
		}
	}
	c.cfg.Logger.Info("launching local instances", "cluster", req.Cluster, "group", req.Group, "ids", ids)
	crashPoint("launch-recorded")

	errs := make([]error, len(batch))
	var wg sync.WaitGroup
	slots := make(chan struct{}, c.cfg.MaxParallelBoots)
	for i := range batch {
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			errs[i] = c.boot(ctx, &batch[i], nw, req.UserData)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		// Tear the whole launch down again: a half-launched group is
		// worse than none, and the caller retries with the same token.
		for i := range batch {
			if terr := c.teardown(context.WithoutCancel(ctx), &batch[i]); terr != nil {
				c.cfg.Logger.Warn("failed to tear down failed launch", "id", batch[i].ID, "err", terr)
			}
		}
		if req.IdempotencyToken != "" {
			_ = os.Remove(c.st.launchPath(req.Cluster, req.IdempotencyToken))
		}
		c.dropNetworkIfUnused(context.WithoutCancel(ctx), req.Cluster)
		return nil, fmt.Errorf("failed to launch %d %s instance(s): %w", req.Count, req.Group, err)
	}
	out := make([]providers.Instance, len(batch))
	for i, r := range batch {
		out[i] = c.view(r)
	}
	return out, nil
}

func withOwnerTags(req providers.LaunchRequest) map[string]string {
	tags := maps.Clone(req.Tags)
	if tags == nil {
		tags = map[string]string{}
	}
	tags[providers.TagCluster] = req.Cluster
	tags[providers.TagGroup] = req.Group
	return tags
}

// boot plugs the machine in, starts dockerd and stages the user data,
// records that, then waits for dockerd and releases the user data; it
// records the running state. A process killed in between leaves a pending
// record that resume completes.
func (c *Cloud) boot(ctx context.Context, r *record, nw network, userData []byte) error {
	if err := plugInstance(ctx, *r, nw); err != nil {
		return err
	}
	pid, exited, err := c.startDockerd(*r)
	if err != nil {
		return err
	}
	r.PID = pid
	if len(userData) > 0 {
		if r.UserDataPID, err = c.stageUserData(*r, userData); err != nil {
			return err
		}
	}
	if err := c.st.writeRecord(*r); err != nil {
		return err
	}
	crashPoint("boot-staged")
	if err := c.waitDockerd(ctx, r.ID, exited); err != nil {
		return err
	}
	return c.finishBoot(ctx, r)
}

// finishBoot releases the staged user data of a machine whose dockerd
// answers, and records it running.
func (c *Cloud) finishBoot(ctx context.Context, r *record) error {
	if r.UserDataPID != 0 {
		if err := c.releaseUserData(ctx, *r); err != nil {
			return err
		}
	}
	r.State = providers.StateRunning
	return c.st.writeRecord(*r)
}

func (c *Cloud) byIDs(ids []string) ([]providers.Instance, error) {
	out := make([]providers.Instance, 0, len(ids))
	for _, id := range ids {
		r, err := c.st.readRecord(id)
		if err != nil {
			return nil, fmt.Errorf("failed to read instance %s: %w", id, err)
		}
		out = append(out, c.view(r))
	}
	return out, nil
}

// ensureNetwork returns the cluster's network, creating bridge and FORWARD
// rule when needed. Called with the state lock held.
func (c *Cloud) ensureNetwork(ctx context.Context, cluster string) (network, error) {
	nw, ok, err := c.st.readNetwork(cluster)
	if err != nil {
		return nw, fmt.Errorf("failed to read network of cluster %s: %w", cluster, err)
	}
	if ok && nw.Subnet != c.cfg.Subnet {
		return nw, fmt.Errorf("failed to launch: cluster %s already uses subnet %s, not %s; terminate its instances first or keep the subnet", cluster, nw.Subnet, c.cfg.Subnet)
	}
	if !ok {
		sp, _ := parseSubnet(c.cfg.Subnet)
		nw = network{Cluster: cluster, Bridge: bridgeName(c.cfg.StateDir, cluster), Subnet: sp.prefix.String(), Gateway: sp.gateway.String()}
		if err := c.st.writeNetwork(nw); err != nil {
			return nw, err
		}
	}
	if err := ensureBridge(ctx, nw); err != nil {
		return nw, err
	}
	return nw, nil
}

// dropNetworkIfUnused removes the cluster's bridge, FORWARD rule and network
// record when no live instance of the cluster is left. Lock held.
func (c *Cloud) dropNetworkIfUnused(ctx context.Context, cluster string) error {
	nw, ok, err := c.st.readNetwork(cluster)
	if err != nil || !ok {
		return err
	}
	recs, err := c.st.records()
	if err != nil {
		return err
	}
	for _, r := range recs {
		if r.Cluster == cluster && r.TerminatedAt == nil {
			return nil
		}
	}
	if err := removeBridge(ctx, nw.Bridge); err != nil {
		return err
	}
	return os.Remove(filepath.Join(c.st.clusterDir(cluster), "network.json"))
}

// Terminate stops the machines' dockerd (waiting for the processes to exit),
// removes their namespaces, veths and directories, and records them as
// terminated. It refuses, before touching anything, ids that are unknown or
// not tagged with cluster. Terminating a terminated instance is a no-op.
// When the cluster's last instance goes, its bridge and FORWARD rule go too.
func (c *Cloud) Terminate(ctx context.Context, cluster string, ids []string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	lk, err := c.st.lock()
	if err != nil {
		return err
	}
	defer lk.Unlock()
	if err := c.resume(ctx); err != nil {
		return err
	}
	batch, err := c.owned(cluster, ids)
	if err != nil {
		return fmt.Errorf("failed to terminate instances: %w", err)
	}
	errs := make([]error, len(batch))
	var wg sync.WaitGroup
	for i := range batch {
		if batch[i].TerminatedAt != nil {
			continue
		}
		wg.Go(func() { errs[i] = c.teardown(ctx, &batch[i]) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("failed to terminate instances: %w", err)
	}
	if err := c.dropNetworkIfUnused(ctx, cluster); err != nil {
		return fmt.Errorf("failed to remove network of cluster %s: %w", cluster, err)
	}
	return nil
}

// owned reads the records of ids and checks they belong to cluster.
func (c *Cloud) owned(cluster string, ids []string) ([]record, error) {
	out := make([]record, 0, len(ids))
	for _, id := range ids {
		r, err := c.st.readRecord(id)
		if errors.Is(err, fs.ErrNotExist) || (err == nil && r.Cluster != cluster) {
			return nil, fmt.Errorf("instance %q of cluster %q: %w", id, cluster, ErrNotOwned)
		}
		if err != nil {
			return nil, fmt.Errorf("failed to read instance %s: %w", id, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// teardown stops the machine and removes everything but its record.
func (c *Cloud) teardown(ctx context.Context, r *record) error {
	r.State = providers.StateShuttingDown
	if err := c.st.writeRecord(*r); err != nil {
		return err
	}
	crashPoint("teardown-recorded")
	if err := c.stopMachine(ctx, *r); err != nil {
		return err
	}
	if err := unplugInstance(ctx, *r); err != nil {
		return err
	}
	dir := c.machine(r.ID).dir
	if err := unmountUnder(dir); err != nil {
		return err
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() == "instance.json" {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("failed to remove directories of %s: %w", r.ID, err)
		}
	}
	now := c.cfg.Now().UTC()
	r.State, r.TerminatedAt, r.PID, r.UserDataPID = providers.StateTerminated, &now, 0, 0
	c.cfg.Logger.Info("terminated local instance", "cluster", r.Cluster, "id", r.ID)
	return c.st.writeRecord(*r)
}

// notTerminated returns the record of an owned instance that is not
// terminated; the caller holds the locks.
func (c *Cloud) notTerminated(cluster, id, verb string) (record, error) {
	recs, err := c.owned(cluster, []string{id})
	if err != nil {
		return record{}, fmt.Errorf("failed to %s instance: %w", verb, err)
	}
	if recs[0].TerminatedAt != nil {
		return record{}, fmt.Errorf("failed to %s instance %s: it is terminated", verb, id)
	}
	return recs[0], nil
}

// Stop stops a running instance's dockerd (like stopping an EC2 instance:
// network and disks stay). Start brings it back.
func (c *Cloud) Stop(ctx context.Context, cluster, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	lk, err := c.st.lock()
	if err != nil {
		return err
	}
	defer lk.Unlock()
	if err := c.resume(ctx); err != nil {
		return err
	}
	r, err := c.notTerminated(cluster, id, "stop")
	if err != nil {
		return err
	}
	r.State = providers.StateStopping
	if err := c.st.writeRecord(r); err != nil {
		return err
	}
	if err := c.stopMachine(ctx, r); err != nil {
		return err
	}
	r.State, r.PID = providers.StateStopped, 0
	return c.st.writeRecord(r)
}

// Start restarts a stopped instance's dockerd (user data does not run again).
func (c *Cloud) Start(ctx context.Context, cluster, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	lk, err := c.st.lock()
	if err != nil {
		return err
	}
	defer lk.Unlock()
	if err := c.resume(ctx); err != nil {
		return err
	}
	r, err := c.notTerminated(cluster, id, "start")
	if err != nil {
		return err
	}
	if c.view(r).State == providers.StateRunning {
		return nil
	}
	pid, exited, err := c.startDockerd(r)
	if err != nil {
		return err
	}
	r.PID = pid
	if err := c.waitDockerd(ctx, id, exited); err != nil {
		return err
	}
	r.State = providers.StateRunning
	return c.st.writeRecord(r)
}
