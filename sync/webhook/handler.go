package webhook

import (
	"context"
	"errors"
	"io"
	"net/http"
)

// Results counted per delivery (the metrics' label values).
const (
	ResultAccepted     = "accepted"      // verified; a pass was triggered here
	ResultForwarded    = "forwarded"     // verified; handed to the leader's daemon
	ResultForwardError = "forward-error" // verified, but the leader's daemon could not be reached
	ResultBadSignature = "bad-signature"
	ResultUnsigned     = "unsigned"
	ResultStale        = "stale"
	ResultReplay       = "replay"
	ResultTooLarge     = "too-large"
	ResultBadRequest   = "bad-request"
)

// Handler serves the webhook endpoint: it caps the body, verifies it, and
// hands a verified delivery to Deliver. Only a verified, delivered delivery
// gets a 2xx answer.
type Handler struct {
	Verifier *Verifier
	// MaxBody caps the body (default DefaultMaxBody).
	MaxBody int64
	// Deliver starts (or forwards) the pass; it returns ResultAccepted or
	// ResultForwarded, or an error (answered 502: the sender retries).
	Deliver func(ctx context.Context, d Delivery) (string, error)
	// Count, when set, is told every delivery's result.
	Count func(result string)
}

func (h *Handler) count(r string) {
	if h.Count != nil {
		h.Count(r)
	}
}

// ServeHTTP answers 202 for a delivered delivery; 401, 409, 413 or 502
// otherwise, with a short reason and never a secret.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		h.count(ResultBadRequest)
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	max := h.MaxBody
	if max <= 0 {
		max = DefaultMaxBody
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			h.count(ResultTooLarge)
			http.Error(w, ErrTooLarge.Error(), http.StatusRequestEntityTooLarge)
			return
		}
		h.count(ResultBadRequest)
		http.Error(w, "failed to read the body", http.StatusBadRequest)
		return
	}
	d, err := h.Verifier.Verify(r.Header, body)
	if err != nil {
		res, code := ResultBadSignature, http.StatusUnauthorized
		switch {
		case errors.Is(err, ErrUnsigned):
			res = ResultUnsigned
		case errors.Is(err, ErrStale):
			res = ResultStale
		case errors.Is(err, ErrReplay):
			res, code = ResultReplay, http.StatusConflict
		}
		h.count(res)
		http.Error(w, err.Error(), code)
		return
	}
	res, err := h.Deliver(r.Context(), d)
	if err != nil {
		h.count(ResultForwardError)
		h.Verifier.Forget(d) // the sender's retry must not be a replay
		http.Error(w, "verified, but the pass could not be started: "+err.Error(), http.StatusBadGateway)
		return
	}
	h.count(res)
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, res+"\n")
}
