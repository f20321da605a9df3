package main

import (
	"fmt"
	"io"
	"time"

	"github.com/swarmsync/swarmsync/providers"
)

// describeLease says in one phrase what lease the Swarm holds.
func describeLease(st providers.LeaseState) string {
	if !st.Held {
		return "it holds no lease at all"
	}
	l := st.Lease
	state := fmt.Sprintf("expires in %s", l.Expiry.Sub(st.Now).Round(time.Second))
	if st.Expired() {
		state = fmt.Sprintf("expired %s ago", st.Now.Sub(l.Expiry).Round(time.Second))
	}
	return fmt.Sprintf("the current lease is %s, held by %q on host %q (pid %d) for %s, %s",
		l.ID, l.Holder, l.Host, l.PID, st.Now.Sub(l.Since).Round(time.Second), state)
}

// renderLease shows the lease force-unlock is about to remove.
func renderLease(w io.Writer, cluster string, st providers.LeaseState) {
	l := st.Lease
	fmt.Fprintf(w, "Apply lease of cluster %s:\n", cluster)
	fmt.Fprintf(w, "  id      %s\n  holder  %q\n  host    %q\n  pid     %d\n", l.ID, l.Holder, l.Host, l.PID)
	if l.Node != "" {
		fmt.Fprintf(w, "  node    %s (the Swarm node it acts through)\n", l.Node)
	}
	if l.TakenOver != "" {
		fmt.Fprintf(w, "  took over %s\n", l.TakenOver)
	}
	fmt.Fprintf(w, "  since   %s (%s ago)\n", l.Since.UTC().Format(time.RFC3339), st.Now.Sub(l.Since).Round(time.Second))
	if st.Expired() {
		fmt.Fprintf(w, "  expired %s ago\n", st.Now.Sub(l.Expiry).Round(time.Second))
	} else {
		fmt.Fprintf(w, "  expires in %s\n", l.Expiry.Sub(st.Now).Round(time.Second))
	}
}

// renderForceUnlockPrompt asks for the confirmation.
func renderForceUnlockPrompt(w io.Writer) {
	fmt.Fprint(w, "Remove this lease? If its holder still runs, two appliers may act at once. Only 'yes' will be accepted: ")
}

// renderUnlocked says which lease was removed.
func renderUnlocked(w io.Writer, cluster string, l providers.Lease) {
	fmt.Fprintf(w, "Removed apply lease %s (held by %q on host %q, pid %d) from cluster %s.\n", l.ID, l.Holder, l.Host, l.PID, cluster)
}
