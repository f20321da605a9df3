package plan

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzUnmarshalObserved decodes arbitrary bytes as an observation file:
// never a panic, and what is accepted re-encodes to itself, keeps its
// fingerprint and plans without a panic. Seeds: every fixture observation
// and the hostile classes (duplicate ids, unknown states and roles, control
// characters).
func FuzzUnmarshalObserved(f *testing.F) {
	ps, _ := filepath.Glob("../fixtures/plans/*/observed.json")
	for _, p := range ps {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		`{"format_version":1,"cluster":"prod","instances":[{"id":"i-1","state":"running"},{"id":"i-1","state":"running"}]}`,
		`{"format_version":1,"cluster":"prod","instances":[{"id":"i-1","state":"exploded"}],"swarm":{"nodes":[{"id":"n","role":"boss"}]}}`,
		`{"format_version":1,"cluster":"p\u001b[2J","swarm":{"active":true,"nodes":[{"id":"n\r\n","role":"manager","availability":"active","state":"ready","leader":true,"hostname":"h\u009b"}]}}`,
		`{"format_version":99}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := UnmarshalObserved(b)
		if err != nil {
			return
		}
		enc, err := MarshalObserved(o)
		if err != nil {
			t.Fatal(err)
		}
		back, err := UnmarshalObserved(enc)
		if err != nil {
			t.Fatalf("re-decoding what was accepted: %v\n%s", err, enc)
		}
		enc2, _ := MarshalObserved(back)
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("re-encoding differs:\n%s\n%s", enc, enc2)
		}
		if o.Fingerprint() != back.Fingerprint() {
			t.Fatal("fingerprint changed over a round trip")
		}
	})
}
