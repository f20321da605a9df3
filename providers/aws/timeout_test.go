package aws

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
)

// silentServer accepts connections and never answers.
func silentServer(t *testing.T, network, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var held []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	return ln
}

// An EC2 endpoint that stops answering costs RequestTimeout per attempt,
// through the SDK's own HTTP client.
func TestRequestTimeout(t *testing.T) {
	ln := silentServer(t, "tcp", "127.0.0.1:0")
	cloud, err := New(context.Background(), Options{
		Region: "us-east-1", Endpoint: "http://" + ln.Addr().String(),
		Credentials:    credentials.NewStaticCredentialsProvider(accessKey, secretKey, ""),
		RequestTimeout: 200 * time.Millisecond, MaxAttempts: 2,
		Backoff: func(int) time.Duration { return time.Millisecond },
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = cloud.Instances(context.Background(), "prod")
	if err == nil || !strings.Contains(err.Error(), "Client.Timeout") && !strings.Contains(err.Error(), "deadline") {
		t.Fatalf("err = %v, want a timeout", err)
	}
}
