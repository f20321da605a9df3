package webhook

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzVerify: whatever the headers and body, a delivery is accepted only
// with the right HMAC (or token), and a correctly signed body is accepted
// once and then refused as a replay.
func FuzzVerify(f *testing.F) {
	f.Add([]byte(`{"ref":"refs/heads/main"}`), "sha256=00", "", "t=1,v1=00", "id")
	f.Add([]byte(""), "", "It's a Secret", "", "")
	f.Add([]byte("x"), "sha256=", "", "t=,v1=", "")
	f.Fuzz(func(t *testing.T, body []byte, ghSig, glToken, genSig, id string) {
		v := newTestVerifier(t)
		h := http.Header{}
		h.Set(HeaderGitHubSignature, ghSig)
		h.Set(HeaderGitLabToken, glToken)
		h.Set(HeaderSignature, genSig)
		h.Set(HeaderDelivery, id)
		d, err := v.Verify(h, body)
		if err == nil {
			ok := false
			switch d.Kind {
			case "github":
				ok = ghSig == SignGitHub(secret, body)
			case "gitlab":
				ok = glToken == string(secret)
			case "generic":
				ts, sig, perr := parseGeneric(genSig)
				ok = perr == nil && strings.EqualFold("t="+strconv.FormatInt(ts, 10)+",v1="+sig, Sign(secret, body, time.Unix(ts, 0)))
			}
			if !ok {
				t.Fatalf("accepted a forged %s delivery: headers %v", d.Kind, h)
			}
		}
		good := http.Header{}
		good.Set(HeaderGitHubSignature, SignGitHub(secret, body))
		good.Set(HeaderGitHubDelivery, "fuzz-"+id)
		if _, err := v.Verify(good, body); err != nil && !errors.Is(err, ErrReplay) {
			t.Fatalf("refused a good signature: %v", err)
		}
		if _, err := v.Verify(good, body); !errors.Is(err, ErrReplay) {
			t.Fatalf("a replay was accepted (err %v)", err)
		}
	})
}
