package ec2conformance

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/swarmsync/swarmsync/internal/ec2sim"
	"github.com/swarmsync/swarmsync/internal/testenv"
	awsprovider "github.com/swarmsync/swarmsync/providers/aws"
)

const (
	region = "us-east-1"
	image  = "ami-12345678"
)

var creds = credentials.NewStaticCredentialsProvider("AKIDCONFORMANCE", "conformance-secret-key", "")

// backend is one EC2 endpoint the suite runs against.
type backend struct {
	name     string
	endpoint string
	subnets  []string       // at least two, in different zones
	sim      *ec2sim.Server // nil for moto_server
}

// client bundles the real provider and a raw SDK client, both counting
// their requests.
type client struct {
	cloud *awsprovider.Cloud
	raw   *ec2.Client
	rec   *ec2sim.Recorder
	hc    *http.Client
}

func (c client) httpClient() *http.Client { return c.hc }

func (b *backend) clients(t *testing.T) client {
	t.Helper()
	rec := &ec2sim.Recorder{}
	hc := &http.Client{Transport: rec, Timeout: 30 * time.Second}
	cloud, err := awsprovider.New(context.Background(), awsprovider.Options{
		Region: region, Endpoint: b.endpoint, HTTPClient: hc, Credentials: creds,
		Backoff: func(int) time.Duration { return time.Millisecond },
	})
	if err != nil {
		t.Fatal(err)
	}
	raw := ec2.New(ec2.Options{
		Region: region, BaseEndpoint: awssdk.String(b.endpoint), HTTPClient: hc, Credentials: creds,
	})
	return client{cloud: cloud, raw: raw, rec: rec, hc: hc}
}

var (
	motoOnce sync.Once
	moto     *Moto
	motoSubs []string
	motoErr  error
	seq      atomic.Int64
)

// unique returns a fresh DNS-label name: moto_server's state lives for the
// whole package run, so every test scopes itself by name.
func unique(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, os.Getpid()%10000, seq.Add(1))
}

func TestMain(m *testing.M) {
	// Keep the SDK away from the instance metadata service and the user's
	// AWS files: everything here talks to loopback only.
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	os.Setenv("AWS_CONFIG_FILE", os.DevNull)
	os.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	code := m.Run()
	if moto != nil {
		moto.Close()
	}
	os.Exit(code)
}

func motoBackend(t *testing.T) *backend {
	t.Helper()
	testenv.NeedMoto(t)
	motoOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		moto, motoErr = StartMoto(ctx)
		if motoErr != nil {
			return
		}
		raw := ec2.New(ec2.Options{Region: region, BaseEndpoint: awssdk.String(moto.URL), Credentials: creds})
		out, err := raw.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{
			Filters: []types.Filter{{Name: awssdk.String("default-for-az"), Values: []string{"true"}}},
		})
		if err != nil {
			motoErr = fmt.Errorf("failed to list moto's default subnets: %w", err)
			return
		}
		sort.Slice(out.Subnets, func(i, j int) bool {
			return awssdk.ToString(out.Subnets[i].AvailabilityZone) < awssdk.ToString(out.Subnets[j].AvailabilityZone)
		})
		for _, s := range out.Subnets {
			motoSubs = append(motoSubs, awssdk.ToString(s.SubnetId))
		}
		if len(motoSubs) < 2 {
			motoErr = fmt.Errorf("moto has %d default subnets, want at least 2", len(motoSubs))
		}
	})
	if motoErr != nil {
		t.Fatal(motoErr)
	}
	return &backend{name: "moto", endpoint: moto.URL, subnets: motoSubs}
}

func simBackend(t *testing.T) *backend {
	t.Helper()
	sim, err := ec2sim.New(ec2sim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	var subs []string
	for _, s := range ec2sim.DefaultSubnets {
		subs = append(subs, s.ID)
	}
	return &backend{name: "ec2sim", endpoint: sim.URL(), subnets: subs, sim: sim}
}

// forEachBackend runs fn against moto_server and against ec2sim.
func forEachBackend(t *testing.T, fn func(t *testing.T, b *backend)) {
	t.Run("moto", func(t *testing.T) { fn(t, motoBackend(t)) })
	t.Run("ec2sim", func(t *testing.T) { fn(t, simBackend(t)) })
}
