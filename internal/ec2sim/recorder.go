package ec2sim

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"sync"
)

// Recorder is an http.RoundTripper for the client side of tests: it counts
// EC2 Query requests per Action and keeps each request's form, then passes
// the request on. It sees what really goes over the wire, whichever server
// (moto_server or this emulator) answers.
type Recorder struct {
	// Base carries the requests (default http.DefaultTransport).
	Base http.RoundTripper

	mu    sync.Mutex
	forms []url.Values
}

// RoundTrip records r's form and sends it on.
func (rec *Recorder) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		body, err := io.ReadAll(r.Body)
		_ = r.Body.Close()
		if err != nil {
			return nil, err
		}
		form, _ := url.ParseQuery(string(body))
		rec.mu.Lock()
		rec.forms = append(rec.forms, form)
		rec.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	base := rec.Base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(r)
}

// Count returns how many requests of action were sent.
func (rec *Recorder) Count(action string) int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	n := 0
	for _, f := range rec.forms {
		if f.Get("Action") == action {
			n++
		}
	}
	return n
}

// Forms returns the forms of the requests of action, in order.
func (rec *Recorder) Forms(action string) []url.Values {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var out []url.Values
	for _, f := range rec.forms {
		if f.Get("Action") == action {
			out = append(out, f)
		}
	}
	return out
}

// Reset forgets every recorded request.
func (rec *Recorder) Reset() {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.forms = nil
}

// Counts returns how many requests of each action were sent.
func (rec *Recorder) Counts() map[string]int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	out := map[string]int{}
	for _, f := range rec.forms {
		out[f.Get("Action")]++
	}
	return out
}
