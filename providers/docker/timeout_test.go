package docker

import (
	"context"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// An engine that stops answering costs RequestTimeout per request.
func TestRequestTimeout(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "docker.sock")
	ln, err := net.Listen("unix", sock)
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
	s, err := New("unix://"+sock, WithRequestTimeout(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	done := make(chan error, 1)
	go func() { _, err := s.Observe(context.Background()); done <- err }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Observe of a silent engine succeeded")
		}
		t.Logf("error: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("Observe of a silent engine did not time out")
	}
}
