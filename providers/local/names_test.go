package local

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNamesAreShortAndDistinct(t *testing.T) {
	names := map[string]string{}
	for _, c := range []struct{ dir, cluster string }{
		{"/var/lib/swarmsync/local", "prod"},
		{"/var/lib/swarmsync/local", "staging"},
		{"/tmp/sslab0-1", "prod"},
		{"/tmp/sslab1-2", "prod"},
	} {
		b := bridgeName(c.dir, c.cluster)
		if len(b) > 15 {
			t.Errorf("bridge %q is longer than 15 bytes", b)
		}
		if prev, ok := names[b]; ok {
			t.Errorf("bridge %q shared by %s and %s/%s", b, prev, c.dir, c.cluster)
		}
		names[b] = c.dir + "/" + c.cluster
	}
	if v := vethName("l-0123456789ab"); len(v) > 15 || v != "ssv0123456789ab" {
		t.Errorf("veth name %q", v)
	}
}

func TestNextIP(t *testing.T) {
	cases := []struct {
		name   string
		subnet string
		used   []string
		want   string
		err    bool
	}{
		{"first after gateway", "10.231.0.0/24", nil, "10.231.0.2", false},
		{"skips used", "10.231.0.0/24", []string{"10.231.0.2", "10.231.0.3"}, "10.231.0.4", false},
		{"fills a hole", "10.231.0.0/24", []string{"10.231.0.3"}, "10.231.0.2", false},
		{"full /29", "10.231.0.0/29", []string{"10.231.0.2", "10.231.0.3", "10.231.0.4", "10.231.0.5", "10.231.0.6"}, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sp, err := parseSubnet(tc.subnet)
			if err != nil {
				t.Fatal(err)
			}
			used := map[string]bool{}
			for _, u := range tc.used {
				used[u] = true
			}
			got, err := sp.nextIP(used)
			if (err != nil) != tc.err {
				t.Fatalf("nextIP err = %v, want error %v", err, tc.err)
			}
			if err == nil {
				if diff := cmp.Diff(tc.want, got.String()); diff != "" {
					t.Errorf("nextIP (-want +got):\n%s", diff)
				}
			}
		})
	}
}
