package gitserve

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/swarmsync/swarmsync/internal/testenv"
)

// GPG is a throwaway OpenPGP key in its own GNUPGHOME.
type GPG struct {
	Home        string // GNUPGHOME
	Fingerprint string
	PublicKey   []byte // armored public key
}

// NewGPG generates a passphrase-less signing key for name <email> in a new
// GNUPGHOME (short path, for the agent socket) removed when the test ends.
func NewGPG(t testing.TB, name, email string) *GPG {
	t.Helper()
	testenv.NeedCommands(t, "gpg", "gpgconf")
	home, err := os.MkdirTemp("", "gpg")
	if err != nil {
		t.Fatal(err)
	}
	g := &GPG{Home: home}
	t.Cleanup(func() {
		exec.Command("gpgconf", "--homedir", home, "--kill", "gpg-agent").Run()
		os.RemoveAll(home)
	})
	g.run(t, "--batch", "--passphrase", "", "--quick-generate-key", name+" <"+email+">", "default", "sign", "never")
	for _, line := range strings.Split(g.run(t, "--with-colons", "--list-secret-keys"), "\n") {
		if strings.HasPrefix(line, "fpr:") {
			g.Fingerprint = strings.Split(line, ":")[9]
			break
		}
	}
	g.PublicKey = []byte(g.run(t, "--armor", "--export", g.Fingerprint))
	return g
}

func (g *GPG) run(t testing.TB, args ...string) string {
	t.Helper()
	cmd := exec.Command("gpg", append([]string{"--homedir", g.Home}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("gpg %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return string(out)
}

// Env returns the git environment additions that make `git commit -S` sign
// with this key.
func (g *GPG) Env() []string {
	return []string{
		"GNUPGHOME=" + g.Home,
		"GIT_CONFIG_COUNT=2",
		"GIT_CONFIG_KEY_0=user.signingkey", "GIT_CONFIG_VALUE_0=" + g.Fingerprint,
		"GIT_CONFIG_KEY_1=gpg.program", "GIT_CONFIG_VALUE_1=gpg",
	}
}
