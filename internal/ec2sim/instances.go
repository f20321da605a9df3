package ec2sim

import (
	"maps"
	"time"
)

// State names and codes, as EC2 reports them.
const (
	StatePending      = "pending"
	StateRunning      = "running"
	StateShuttingDown = "shutting-down"
	StateTerminated   = "terminated"
)

var stateCodes = map[string]int{
	StatePending: 0, StateRunning: 16, StateShuttingDown: 32, StateTerminated: 48,
	"stopping": 64, "stopped": 80,
}

type instance struct {
	seq             uint64
	id              string
	reservation     *reservation
	imageID         string
	instanceType    string
	subnet          *subnetState
	privateIP       string
	keyName         string
	profile         string
	securityGroups  []string
	clientToken     string
	launchIndex     int
	tags            map[string]string
	launchedAt      time.Time
	hiddenDescribes int // DescribeInstances requests that still miss it

	booting      bool // a Booter is starting it
	bootFailed   bool
	stopping     bool // a Booter is stopping it
	terminatedAt time.Time
}

type reservation struct {
	id        string
	instances []*instance
	digest    string // canonical launch parameters, for ClientToken checks
}

// state derives the lifecycle state at now.
func (in *instance) state(now time.Time, o Options) string {
	if !in.terminatedAt.IsZero() {
		if in.stopping || in.booting || now.Before(in.terminatedAt.Add(o.ShuttingDownFor)) {
			return StateShuttingDown
		}
		return StateTerminated
	}
	if in.booting || now.Before(in.launchedAt.Add(o.PendingFor)) {
		return StatePending
	}
	return StateRunning
}

// gone reports whether a terminated instance has dropped out of view.
func (in *instance) gone(now time.Time, o Options) bool {
	return !in.terminatedAt.IsZero() && !in.stopping && !in.booting &&
		!now.Before(in.terminatedAt.Add(o.ShuttingDownFor).Add(o.TerminatedVisibleFor))
}

func (in *instance) snapshot(now time.Time, o Options) Instance {
	return Instance{
		ID: in.id, ReservationID: in.reservation.id, ImageID: in.imageID,
		InstanceType: in.instanceType, SubnetID: in.subnet.ID, Zone: in.subnet.Zone,
		PrivateIP: in.privateIP, KeyName: in.keyName, InstanceProfile: in.profile,
		SecurityGroups: append([]string(nil), in.securityGroups...),
		ClientToken:    in.clientToken, Tags: maps.Clone(in.tags),
		State: in.state(now, o), LaunchedAt: in.launchedAt,
	}
}

// expire forgets terminated instances past their visibility. Callers hold mu.
func (s *Server) expire(now time.Time) {
	kept := s.order[:0]
	for _, in := range s.order {
		if in.gone(now, s.opts) {
			delete(s.instances, in.id)
			continue
		}
		kept = append(kept, in)
	}
	clear(s.order[len(kept):])
	s.order = kept
}
