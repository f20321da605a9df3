package aws

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/swarmsync/swarmsync/internal/testenv"
)

// An EC2 endpoint that stops answering costs RequestTimeout per attempt,
// through the SDK's own HTTP client.
func TestRequestTimeout(t *testing.T) {
	ln := testenv.SilentServer(t, "tcp", "127.0.0.1:0")
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
