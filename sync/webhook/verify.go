package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Header names.
const (
	HeaderGitHubSignature = "X-Hub-Signature-256"
	HeaderGitHubDelivery  = "X-GitHub-Delivery"
	HeaderGitLabToken     = "X-Gitlab-Token"
	HeaderGitLabDelivery  = "X-Gitlab-Event-UUID"
	HeaderSignature       = "X-Swarmsync-Signature"
	HeaderDelivery        = "X-Swarmsync-Delivery"
	// HeaderForwarded marks a delivery one daemon forwarded to another.
	HeaderForwarded = "X-Swarmsync-Forwarded"
)

// Defaults.
const (
	DefaultMaxBody = 1 << 20 // 1 MiB: GitHub caps payloads at 25 MB, a push event is a few kB
	DefaultWindow  = 5 * time.Minute
	maxRemembered  = 4096
	maxIDLen       = 128
)

// Errors a delivery is refused with. None carries the secret or the
// expected signature.
var (
	ErrUnsigned     = errors.New("no signature header (X-Hub-Signature-256, X-Gitlab-Token or X-Swarmsync-Signature)")
	ErrBadSignature = errors.New("signature does not match")
	ErrStale        = errors.New("signature timestamp outside the replay window")
	ErrReplay       = errors.New("delivery already received")
	ErrTooLarge     = errors.New("body too large")
)

// Delivery is a verified delivery.
type Delivery struct {
	// Kind is "github", "gitlab" or "generic".
	Kind string
	// ID identifies the delivery (the sender's id, or the signature).
	ID string
	// Forwarded is true when another daemon forwarded it.
	Forwarded bool
}

// Verifier checks deliveries against one shared secret. It is safe for
// concurrent use.
type Verifier struct {
	secret []byte
	// Window bounds generic timestamps and how long ids are remembered.
	Window time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time

	mu   sync.Mutex
	seen map[string]time.Time
}

// NewVerifier returns a verifier for secret, which must not be empty.
func NewVerifier(secret []byte) (*Verifier, error) {
	if len(secret) == 0 {
		return nil, errors.New("the webhook secret is empty")
	}
	return &Verifier{secret: append([]byte(nil), secret...), Window: DefaultWindow, Now: time.Now, seen: map[string]time.Time{}}, nil
}

// Verify checks one delivery's headers and body. The caller has already
// capped the body's size.
func (v *Verifier) Verify(h http.Header, body []byte) (Delivery, error) {
	now := v.Now()
	var d Delivery
	switch {
	case h.Get(HeaderGitHubSignature) != "":
		sig, ok := strings.CutPrefix(h.Get(HeaderGitHubSignature), "sha256=")
		if !ok || !v.macEqual(sig, body) {
			return Delivery{}, ErrBadSignature
		}
		d = Delivery{Kind: "github", ID: h.Get(HeaderGitHubDelivery)}
	case h.Get(HeaderGitLabToken) != "":
		if subtle.ConstantTimeCompare([]byte(h.Get(HeaderGitLabToken)), v.secret) != 1 {
			return Delivery{}, ErrBadSignature
		}
		d = Delivery{Kind: "gitlab", ID: h.Get(HeaderGitLabDelivery)}
	case h.Get(HeaderSignature) != "":
		ts, sig, err := parseGeneric(h.Get(HeaderSignature))
		if err != nil {
			return Delivery{}, err
		}
		if !v.macEqual(sig, append([]byte(strconv.FormatInt(ts, 10)+"."), body...)) {
			return Delivery{}, ErrBadSignature
		}
		if at := time.Unix(ts, 0); at.Before(now.Add(-v.Window)) || at.After(now.Add(v.Window)) {
			return Delivery{}, ErrStale
		}
		d = Delivery{Kind: "generic", ID: h.Get(HeaderDelivery), Forwarded: h.Get(HeaderForwarded) != ""}
		if d.ID == "" {
			d.ID = "sig:" + sig
		}
	default:
		return Delivery{}, ErrUnsigned
	}
	if len(d.ID) > maxIDLen {
		d.ID = d.ID[:maxIDLen]
	}
	if d.ID != "" && !v.remember(d.Kind+"/"+d.ID, now) {
		return Delivery{}, ErrReplay
	}
	return d, nil
}

// Forget drops d's id, so a retry of a delivery that could not be handed
// on is not taken for a replay.
func (v *Verifier) Forget(d Delivery) {
	if d.ID == "" {
		return
	}
	id := d.ID
	if len(id) > maxIDLen {
		id = id[:maxIDLen]
	}
	v.mu.Lock()
	delete(v.seen, d.Kind+"/"+id)
	v.mu.Unlock()
}

// macEqual compares hex HMAC-SHA256(secret, msg) with sig in constant time.
func (v *Verifier) macEqual(sig string, msg []byte) bool {
	got, err := hex.DecodeString(sig)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, v.secret)
	m.Write(msg)
	return hmac.Equal(got, m.Sum(nil))
}

// remember records id; false when it was seen within the window. The set
// is bounded: expired ids go first, then the oldest.
func (v *Verifier) remember(id string, now time.Time) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if at, ok := v.seen[id]; ok && now.Sub(at) < 2*v.Window {
		return false
	}
	if len(v.seen) >= maxRemembered {
		var oldest string
		var oldestAt time.Time
		for k, at := range v.seen {
			if now.Sub(at) >= 2*v.Window {
				delete(v.seen, k)
				continue
			}
			if oldest == "" || at.Before(oldestAt) {
				oldest, oldestAt = k, at
			}
		}
		if len(v.seen) >= maxRemembered {
			delete(v.seen, oldest)
		}
	}
	v.seen[id] = now
	return true
}

// parseGeneric parses "t=<unix>,v1=<hex>".
func parseGeneric(s string) (int64, string, error) {
	var ts int64 = -1
	var sig string
	for _, part := range strings.Split(s, ",") {
		k, val, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil || n < 0 {
				return 0, "", fmt.Errorf("%w: bad timestamp", ErrBadSignature)
			}
			ts = n
		case "v1":
			sig = val
		}
	}
	if ts < 0 || sig == "" {
		return 0, "", fmt.Errorf("%w: want t=<unix seconds>,v1=<hex hmac>", ErrBadSignature)
	}
	return ts, sig, nil
}

// Sign returns the generic signature header value for body at time at.
func Sign(secret, body []byte, at time.Time) string {
	ts := strconv.FormatInt(at.Unix(), 10)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts + "."))
	m.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(m.Sum(nil))
}

// SignGitHub returns the X-Hub-Signature-256 value GitHub sends for body.
func SignGitHub(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}
