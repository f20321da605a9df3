package docker

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/swarmsync/swarmsync/internal/testenv"
)

// An engine that stops answering costs RequestTimeout per request.
func TestRequestTimeout(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "docker.sock")
	testenv.SilentServer(t, "unix", sock)
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
