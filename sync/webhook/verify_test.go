package webhook

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var (
	secret = []byte("It's a Secret to Everybody")
	now    = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
)

func newTestVerifier(t testing.TB) *Verifier {
	t.Helper()
	v, err := NewVerifier(secret)
	if err != nil {
		t.Fatal(err)
	}
	v.Now = func() time.Time { return now }
	return v
}

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

// TestVerifyGitHubExample checks the signature of GitHub's documented
// example (secret "It's a Secret to Everybody", payload "Hello, World!").
func TestVerifyGitHubExample(t *testing.T) {
	const want = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	if got := SignGitHub(secret, []byte("Hello, World!")); got != want {
		t.Fatalf("SignGitHub = %s, want GitHub's %s", got, want)
	}
	v := newTestVerifier(t)
	d, err := v.Verify(hdr(HeaderGitHubSignature, want, HeaderGitHubDelivery, "72d3162e-cc78-11e3-81ab-4c9367dc0958"), []byte("Hello, World!"))
	if err != nil || d.Kind != "github" || d.ID != "72d3162e-cc78-11e3-81ab-4c9367dc0958" {
		t.Fatalf("Verify = %+v, %v", d, err)
	}
}

func TestVerify(t *testing.T) {
	body := []byte(`{"ref":"refs/heads/main"}`)
	tests := []struct {
		name string
		h    http.Header
		body []byte
		want string // kind, or "" for an error
		err  error
	}{
		{"github", hdr(HeaderGitHubSignature, SignGitHub(secret, body), HeaderGitHubDelivery, "g1"), body, "github", nil},
		{"github body changed", hdr(HeaderGitHubSignature, SignGitHub(secret, body)), []byte(`{"ref":"refs/heads/evil"}`), "", ErrBadSignature},
		{"github other secret", hdr(HeaderGitHubSignature, SignGitHub([]byte("guess"), body)), body, "", ErrBadSignature},
		{"github sha1 prefix", hdr(HeaderGitHubSignature, strings.Replace(SignGitHub(secret, body), "sha256=", "sha1=", 1)), body, "", ErrBadSignature},
		{"github not hex", hdr(HeaderGitHubSignature, "sha256=zz"), body, "", ErrBadSignature},
		{"gitlab", hdr(HeaderGitLabToken, string(secret), HeaderGitLabDelivery, "l1"), body, "gitlab", nil},
		{"gitlab wrong token", hdr(HeaderGitLabToken, "It's a Secret to Everybodz"), body, "", ErrBadSignature},
		{"gitlab prefix of token", hdr(HeaderGitLabToken, "It's a"), body, "", ErrBadSignature},
		{"generic", hdr(HeaderSignature, Sign(secret, body, now), HeaderDelivery, "x1"), body, "generic", nil},
		{"generic within window", hdr(HeaderSignature, Sign(secret, body, now.Add(-4*time.Minute))), body, "generic", nil},
		{"generic too old", hdr(HeaderSignature, Sign(secret, body, now.Add(-6*time.Minute))), body, "", ErrStale},
		{"generic from the future", hdr(HeaderSignature, Sign(secret, body, now.Add(6*time.Minute))), body, "", ErrStale},
		{"generic timestamp moved", hdr(HeaderSignature, strings.Replace(Sign(secret, body, now), "t=", "t=1", 1)), body, "", ErrBadSignature},
		{"generic malformed", hdr(HeaderSignature, "v1=abcd"), body, "", ErrBadSignature},
		{"unsigned", hdr("X-GitHub-Event", "push"), body, "", ErrUnsigned},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newTestVerifier(t)
			d, err := v.Verify(tc.h, tc.body)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				if strings.Contains(err.Error(), string(secret)) {
					t.Errorf("error carries the secret: %v", err)
				}
				return
			}
			if err != nil || d.Kind != tc.want {
				t.Fatalf("Verify = %+v, %v; want kind %s", d, err, tc.want)
			}
			if _, err := v.Verify(tc.h, tc.body); !errors.Is(err, ErrReplay) {
				t.Errorf("the same delivery again: err = %v, want a replay", err)
			}
		})
	}
}

// TestHandler: status codes and counted results over real HTTP.
func TestHandler(t *testing.T) {
	var results []string
	fail := false
	h := &Handler{
		Verifier: newTestVerifier(t),
		MaxBody:  64,
		Deliver: func(_ context.Context, d Delivery) (string, error) {
			if fail {
				return "", errors.New("leader's daemon at 10.0.0.1:9090 did not answer")
			}
			return ResultAccepted, nil
		},
		Count: func(r string) { results = append(results, r) },
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	post := func(body string, kv ...string) int {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(body))
		for i := 0; i < len(kv); i += 2 {
			req.Header.Set(kv[i], kv[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	body := `{"ref":"refs/heads/main"}`
	sig := SignGitHub(secret, []byte(body))
	got := []int{
		post(body, HeaderGitHubSignature, sig, HeaderGitHubDelivery, "d1"),
		post(body, HeaderGitHubSignature, sig, HeaderGitHubDelivery, "d1"),
		post(body, HeaderGitHubSignature, SignGitHub([]byte("x"), []byte(body)), HeaderGitHubDelivery, "d2"),
		post(strings.Repeat("x", 65), HeaderGitHubSignature, SignGitHub(secret, []byte(strings.Repeat("x", 65)))),
		post(body),
	}
	fail = true
	got = append(got, post(body, HeaderGitHubSignature, sig, HeaderGitHubDelivery, "d3"))
	fail = false
	got = append(got, post(body, HeaderGitHubSignature, sig, HeaderGitHubDelivery, "d3")) // the sender's retry
	want := []int{202, 409, 401, 413, 401, 502, 202}
	wantRes := []string{ResultAccepted, ResultReplay, ResultBadSignature, ResultTooLarge, ResultUnsigned, ResultForwardError, ResultAccepted}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("status codes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantRes, results); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
}
