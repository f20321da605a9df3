package sync

import (
	"fmt"
	"net"
	"net/url"
	"os"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	xssh "golang.org/x/crypto/ssh"
)

// Environment variables AuthFromEnv reads. Credentials come only from the
// environment (or files), never from flag values that end up in shell
// history.
const (
	EnvToken         = "SWARMSYNC_GIT_TOKEN"          // https token (sent as the basic-auth password)
	EnvUsername      = "SWARMSYNC_GIT_USERNAME"       // https basic-auth user name
	EnvPassword      = "SWARMSYNC_GIT_PASSWORD"       // https basic-auth password
	EnvSSHKey        = "SWARMSYNC_GIT_SSH_KEY"        // path of an ssh private key file
	EnvSSHPassphrase = "SWARMSYNC_GIT_SSH_PASSPHRASE" // passphrase of that key
	EnvKnownHosts    = "SWARMSYNC_GIT_KNOWN_HOSTS"    // known_hosts file (default: SSH_KNOWN_HOSTS, ~/.ssh/known_hosts)
)

// Auth holds the credentials for remote sources. The zero value means
// anonymous https/git and ssh through the ssh-agent.
type Auth struct {
	Token    string // https: token, sent as the password with user Username (default "git")
	Username string // https: basic-auth user name
	Password string // https: basic-auth password (Token wins when both are set)

	SSHKeyFile       string   // ssh: private key file; empty means the ssh-agent
	SSHKeyPassphrase string   // ssh: passphrase of SSHKeyFile
	KnownHostsFiles  []string // ssh: known_hosts files; empty means the ssh defaults
	// InsecureIgnoreHostKey skips ssh host-key verification. Dangerous:
	// anyone on the path can impersonate the server.
	InsecureIgnoreHostKey bool
}

// AuthFromEnv reads the SWARMSYNC_GIT_* variables through getenv.
func AuthFromEnv(getenv func(string) string) Auth {
	a := Auth{
		Token:            getenv(EnvToken),
		Username:         getenv(EnvUsername),
		Password:         getenv(EnvPassword),
		SSHKeyFile:       getenv(EnvSSHKey),
		SSHKeyPassphrase: getenv(EnvSSHPassphrase),
	}
	if f := getenv(EnvKnownHosts); f != "" {
		a.KnownHostsFiles = []string{f}
	}
	return a
}

// secrets lists the values that must never appear in output.
func (a Auth) secrets() []string {
	return []string{a.Token, a.Password, a.SSHKeyPassphrase}
}

// method builds the go-git auth method for a remote location.
func (a Auth) method(loc location) (transport.AuthMethod, error) {
	switch loc.scheme {
	case "http", "https":
		user := a.Username
		if user == "" {
			user = loc.username
		}
		if (a.Token != "" || a.Password != "") && loc.scheme == "http" && !loopbackURL(loc.url) {
			return nil, &Error{Kind: ErrInvalidSource, Repo: loc.display, msg: fmt.Sprintf(
				"refusing to send Git credentials over plain http to %s (anyone on the path could read them): use an https:// URL, "+
					"or unset %s and %s for an anonymous pull", loc.display, EnvToken, EnvPassword)}
		}
		switch {
		case a.Token != "":
			if user == "" {
				user = "git"
			}
			return &githttp.BasicAuth{Username: user, Password: a.Token}, nil
		case a.Password != "":
			return &githttp.BasicAuth{Username: user, Password: a.Password}, nil
		}
		return nil, nil
	case "ssh":
		user := loc.username
		if user == "" {
			user = gitssh.DefaultUsername
		}
		var cb xssh.HostKeyCallback
		if a.InsecureIgnoreHostKey {
			cb = xssh.InsecureIgnoreHostKey() //nolint:gosec // explicit, loudly-named opt-in
		} else {
			files := a.KnownHostsFiles
			if len(files) == 0 {
				if v := os.Getenv(EnvKnownHosts); v != "" {
					files = []string{v}
				}
			}
			var err error
			cb, err = gitssh.NewKnownHostsCallback(files...)
			if err != nil {
				return nil, &Error{Kind: ErrHostKey, Repo: loc.display, msg: fmt.Sprintf(
					"failed to read known_hosts for %s: %v; pass --known-hosts FILE (or --insecure-ignore-host-key, which disables the check)", loc.display, err)}
			}
		}
		if a.SSHKeyFile != "" {
			pk, err := gitssh.NewPublicKeysFromFile(user, a.SSHKeyFile, a.SSHKeyPassphrase)
			if err != nil {
				return nil, &Error{Kind: ErrAuth, Repo: loc.display, msg: fmt.Sprintf(
					"failed to read ssh key %s: %s", a.SSHKeyFile, scrubber{secrets: a.secrets()}.scrub(err.Error()))}
			}
			pk.HostKeyCallback = cb
			return pk, nil
		}
		ag, err := gitssh.NewSSHAgentAuth(user)
		if err != nil {
			return nil, &Error{Kind: ErrAuth, Repo: loc.display, msg: fmt.Sprintf(
				"no ssh credentials for %s: pass --ssh-key FILE (or set %s) or run an ssh-agent (%v)", loc.display, EnvSSHKey, err)}
		}
		ag.HostKeyCallback = cb
		return ag, nil
	}
	return nil, nil
}

// loopbackURL reports whether a URL's host is this machine (localhost or a
// loopback address): plain http there crosses no network.
func loopbackURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	h := u.Hostname()
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
