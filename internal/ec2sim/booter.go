package ec2sim

import (
	"context"
	"time"
)

// Instance is a snapshot of one emulated instance, handed to a Booter and
// returned by Server.Instances.
type Instance struct {
	ID            string
	ReservationID string
	ImageID       string
	InstanceType  string
	SubnetID      string
	Zone          string
	// PrivateIP is the address the emulator allocated from the subnet; a
	// Booter may replace it with the address its machine really has.
	PrivateIP       string
	KeyName         string
	InstanceProfile string
	SecurityGroups  []string
	ClientToken     string
	Tags            map[string]string
	State           string
	LaunchedAt      time.Time
}

// Booter turns launched instances into real machines. The emulator calls
// Boot once per launched instance (in its own goroutine; the instance stays
// pending until Boot returns) and Stop once per terminated instance that
// booted (the instance stays shutting-down until Stop returns). A Boot error
// terminates the instance with state reason Server.InternalError. userData
// is secret: a Booter must not log it.
type Booter interface {
	Boot(ctx context.Context, inst Instance, userData []byte) (privateIP string, err error)
	Stop(id string)
}
