package local

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/gofrs/flock"

	"github.com/swarmsync/swarmsync/providers"
)

// record is what the state directory keeps about one instance.
type record struct {
	providers.Instance
	// Netns is the network namespace name (/var/run/netns/<Netns>).
	Netns string `json:"netns"`
	// VethHost is the host side of the veth pair (on the bridge).
	VethHost string `json:"veth_host"`
	// Bridge is the cluster bridge the instance is attached to.
	Bridge string `json:"bridge"`
	// PID is the dockerd process id (0 when stopped).
	PID int `json:"pid,omitempty"`
	// UserDataPID is the process id of the user-data shell (it may have
	// finished long ago).
	UserDataPID int `json:"user_data_pid,omitempty"`
	// TerminatedAt is set once the instance is terminated.
	TerminatedAt *time.Time `json:"terminated_at,omitempty"`
}

// network is what the state directory keeps about one cluster's bridge.
type network struct {
	Cluster string `json:"cluster"`
	Bridge  string `json:"bridge"`
	Subnet  string `json:"subnet"`
	Gateway string `json:"gateway"`
}

// launchRecord remembers which instances an idempotency token produced.
type launchRecord struct {
	// Request is a digest of every launch parameter (user data included).
	Request string   `json:"request"`
	IDs     []string `json:"ids"`
}

// store is the on-disk layout under the state directory:
//
//	lock                              flock serialising every mutation
//	instances/<id>/instance.json      record
//	instances/<id>/{docker.sock,data,exec,dockerd.pid,dockerd.log,user-data.log}
//	clusters/<cluster>/network.json   network
//	clusters/<cluster>/launches/<sha256(token)>.json  launchRecord
type store struct{ dir string }

func (s store) lock() (*flock.Flock, error) {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, fmt.Errorf("failed to create state directory %s: %w", s.dir, err)
	}
	l := flock.New(filepath.Join(s.dir, "lock"))
	if err := l.Lock(); err != nil {
		return nil, fmt.Errorf("failed to lock state directory %s: %w", s.dir, err)
	}
	return l, nil
}

// tryLock takes the lock if nobody holds it.
func (s store) tryLock() (*flock.Flock, bool) {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, false
	}
	l := flock.New(filepath.Join(s.dir, "lock"))
	if ok, err := l.TryLock(); err != nil || !ok {
		return nil, false
	}
	return l, true
}

func (s store) instanceDir(id string) string  { return filepath.Join(s.dir, "instances", id) }
func (s store) clusterDir(name string) string { return filepath.Join(s.dir, "clusters", name) }

func (s store) readRecord(id string) (record, error) {
	var r record
	err := readJSON(filepath.Join(s.instanceDir(id), "instance.json"), &r)
	return r, err
}

func (s store) writeRecord(r record) error {
	return writeJSON(filepath.Join(s.instanceDir(r.ID), "instance.json"), r)
}

// records returns every instance record in launch order: by launch time,
// then address (a launch hands out addresses in order), then id.
func (s store) records() ([]record, error) {
	entries, err := os.ReadDir(filepath.Join(s.dir, "instances"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read instances in %s: %w", s.dir, err)
	}
	var out []record
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		r, err := s.readRecord(e.Name())
		if errors.Is(err, fs.ErrNotExist) {
			continue // a launch that never got as far as its record
		}
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].LaunchedAt.Equal(out[j].LaunchedAt) {
			return out[i].LaunchedAt.Before(out[j].LaunchedAt)
		}
		ai, _ := netip.ParseAddr(out[i].PrivateIP)
		aj, _ := netip.ParseAddr(out[j].PrivateIP)
		if c := ai.Compare(aj); c != 0 {
			return c < 0
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

func (s store) readNetwork(cluster string) (network, bool, error) {
	var n network
	err := readJSON(filepath.Join(s.clusterDir(cluster), "network.json"), &n)
	if errors.Is(err, fs.ErrNotExist) {
		return n, false, nil
	}
	return n, err == nil, err
}

func (s store) writeNetwork(n network) error {
	return writeJSON(filepath.Join(s.clusterDir(n.Cluster), "network.json"), n)
}

func (s store) launchesDir(cluster string) string {
	return filepath.Join(s.clusterDir(cluster), "launches")
}

func (s store) launchPath(cluster, token string) string {
	sum := sha256.Sum256([]byte(token))
	return filepath.Join(s.launchesDir(cluster), hex.EncodeToString(sum[:16])+".json")
}

func (s store) readLaunch(cluster, token string) (launchRecord, bool, error) {
	var l launchRecord
	err := readJSON(s.launchPath(cluster, token), &l)
	if errors.Is(err, fs.ErrNotExist) {
		return l, false, nil
	}
	return l, err == nil, err
}

func (s store) writeLaunch(cluster, token string, l launchRecord) error {
	return writeJSON(s.launchPath(cluster, token), l)
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("failed to decode %s: %w", path, err)
	}
	return nil
}

// writeJSON writes v to path atomically (temp file, fsync, rename), mode 0600.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("failed to encode %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("failed to create %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("failed to write %s: %w", path, err)
	}
	tmp := f.Name()
	_, werr := f.Write(append(b, '\n'))
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		os.Remove(tmp)
		return fmt.Errorf("failed to write %s: %w", path, werr)
	}
	return nil
}
