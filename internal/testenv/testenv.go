package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// RequireLabEnv names the environment variable that turns skips into
// failures. CI sets it, so a lab test that cannot run fails the build.
const RequireLabEnv = "SWARMSYNC_REQUIRE_LAB"

// Required reports whether lab prerequisites are mandatory in this run.
func Required() bool { return os.Getenv(RequireLabEnv) == "1" }

// Unavailable skips the test with the reason, or fails it when the lab is
// required.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if Required() {
		t.Fatalf("lab prerequisite missing (%s=1): "+format, append([]any{RequireLabEnv}, args...)...)
	}
	t.Skipf("skipping: "+format, args...)
}

// NeedRoot skips (or fails) unless running as root.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Unavailable(t, "needs root (network namespaces, dockerd)")
	}
}

// NeedCommands skips (or fails) unless every named program is on PATH.
func NeedCommands(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			Unavailable(t, "needs %q on PATH", n)
		}
	}
}

// NeedLab skips (or fails) unless the local-machine lab can run: root,
// dockerd, and the namespace tools.
func NeedLab(t testing.TB) {
	t.Helper()
	NeedRoot(t)
	NeedCommands(t, "dockerd", "ip", "iptables", "nsenter", "unshare")
}

// NeedMoto skips (or fails) unless moto_server is installed.
func NeedMoto(t testing.TB) {
	t.Helper()
	NeedCommands(t, "moto_server")
}
