package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/swarmsync/swarmsync/schema"
	gitsync "github.com/swarmsync/swarmsync/sync"
)

// sourceFlags are the flags every command uses to find the specs.
// Credentials never come from flags (they would end up in shell history):
// https tokens and passwords come from SWARMSYNC_GIT_TOKEN, or
// SWARMSYNC_GIT_USERNAME and SWARMSYNC_GIT_PASSWORD; ssh keys from a file.
type sourceFlags struct {
	Repo     string
	Ref      string
	Path     string
	CacheDir string
	Timeout  time.Duration // bounds each Git network operation

	GitTokenFile          string // file holding the https token (a Docker secret in the daemon)
	VerifySignatures      string // armored keyring file of trusted OpenPGP public keys
	SSHKey                string // ssh private key file (default: $SWARMSYNC_GIT_SSH_KEY, then the ssh-agent)
	KnownHosts            string // known_hosts file (default: $SWARMSYNC_GIT_KNOWN_HOSTS, $SSH_KNOWN_HOSTS, ~/.ssh/known_hosts)
	InsecureIgnoreHostKey bool
}

func (s *sourceFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&s.Repo, "repo", ".", "Git URL (https, ssh, git, file) or local path (repository, work tree or plain directory) holding the specs")
	fs.StringVar(&s.Ref, "ref", "", "branch, tag or full commit hash to use (default: the repository's HEAD)")
	fs.StringVar(&s.Path, "path", "", "sub-directory of the repository that holds the specs")
	fs.DurationVar(&s.Timeout, "git-timeout", gitsync.DefaultTimeout, "bound on each Git network operation (listing refs, fetching)")
	fs.StringVar(&s.CacheDir, "cache-dir", "", "where clones and checkouts are cached (default: the user cache directory)")
	fs.StringVar(&s.GitTokenFile, "git-token-file", "", "file holding the https Git token (default: $"+gitsync.EnvToken+", then "+defaultGitTokenFile+" if it exists)")
	fs.StringVar(&s.VerifySignatures, "verify-signatures", "", "file of trusted OpenPGP public keys (armored); the commit must carry a good signature from one of them")
	fs.StringVar(&s.SSHKey, "ssh-key", "", "ssh private key file for ssh URLs (default: $"+gitsync.EnvSSHKey+", then the ssh-agent); passphrase from $"+gitsync.EnvSSHPassphrase)
	fs.StringVar(&s.KnownHosts, "known-hosts", "", "known_hosts file to verify ssh host keys against (default: $"+gitsync.EnvKnownHosts+", $SSH_KNOWN_HOSTS, ~/.ssh/known_hosts)")
	fs.BoolVar(&s.InsecureIgnoreHostKey, "insecure-ignore-host-key", false, "DANGEROUS: do not verify the ssh host key (anyone on the path can impersonate the server)")
}

// checkout is a resolved source: the directory holding the spec files and
// the revision they came from.
type checkout struct {
	Dir    string // the spec directory (repository root joined with --path)
	Repo   string // the repository, credentials stripped
	Ref    string
	Commit string // resolved commit, or "dir:<digest>" for a plain directory
	Path   string
	Signer string // fingerprint of the trusted key that signed Commit (with --verify-signatures)
	// Uncommitted are the work tree's files that differ from the HEAD
	// read (local work trees only).
	Uncommitted []string
}

// puller builds the Git puller from the flags and the environment.
func (s *sourceFlags) puller() (*gitsync.Puller, error) {
	opts := gitsync.Options{
		CacheDir: s.CacheDir,
		Timeout:  s.Timeout,
		Auth:     gitsync.AuthFromEnv(os.Getenv),
		Logger:   slog.Default(),
	}
	tok, err := s.gitToken(opts.Auth.Token)
	if err != nil {
		return nil, err
	}
	opts.Auth.Token = tok
	if s.SSHKey != "" {
		opts.Auth.SSHKeyFile = s.SSHKey
	}
	if s.KnownHosts != "" {
		opts.Auth.KnownHostsFiles = []string{s.KnownHosts}
	}
	opts.Auth.InsecureIgnoreHostKey = s.InsecureIgnoreHostKey
	if s.InsecureIgnoreHostKey {
		slog.Warn("ssh host key verification is disabled (--insecure-ignore-host-key)", "repo", gitsync.Redact(s.Repo))
	}
	if s.VerifySignatures != "" {
		keys, err := os.ReadFile(s.VerifySignatures)
		if err != nil {
			return nil, fmt.Errorf("failed to read --verify-signatures keyring: %w", err)
		}
		opts.TrustedKeys = keys
		if len(keys) == 0 {
			return nil, fmt.Errorf("--verify-signatures %s is empty: export the trusted keys with gpg --armor --export", s.VerifySignatures)
		}
	}
	return gitsync.New(opts)
}

// defaultGitTokenFile is where the daemon's Docker secret appears.
const defaultGitTokenFile = "/run/secrets/swarmsync_git_token"

// gitToken picks the https token: --git-token-file, else the environment's
// (env), else the Docker secret's file when it exists.
func (s *sourceFlags) gitToken(env string) (string, error) {
	path := s.GitTokenFile
	if path == "" {
		if env != "" {
			return env, nil
		}
		if _, err := os.Stat(defaultGitTokenFile); err != nil {
			return "", nil
		}
		path = defaultGitTokenFile
	}
	return readSecretFile(path, "--git-token-file")
}

// readSecretFile reads a secret from a file (trailing newlines dropped).
// Errors name the flag and the file, never the content.
func readSecretFile(path, flag string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("failed to read %s: %w", flag, err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// checkout resolves the source flags to a directory of spec files.
func (s *sourceFlags) checkout(ctx context.Context) (*checkout, error) {
	p, err := s.puller()
	if err != nil {
		return nil, err
	}
	res, err := p.Pull(ctx, gitsync.Source{Repo: s.Repo, Ref: s.Ref, Path: s.Path})
	if err != nil {
		return nil, err
	}
	co := &checkout{Dir: res.Dir, Repo: res.Repo, Ref: res.Ref, Commit: string(res.Revision), Path: res.Path, Uncommitted: res.Uncommitted}
	if res.Commit != nil {
		co.Signer = res.Commit.Signer
	}
	return co, nil
}

// loadSpecs loads the specs of a checkout, CUE within its evaluation
// budget (budget.go). It warns (on stderr) when the work tree has edits
// that are not read, prints the diagnostics of invalid specs, and says
// which --path to use when there are no specs.
func loadSpecs(ctx context.Context, a *app, co *checkout) (*schema.Result, error) {
	renderUncommitted(a.stderr, co)
	if err := evaluateWithinBudget(ctx, co.Dir); err != nil {
		return nil, err
	}
	res, err := schema.LoadDir(co.Dir)
	var ds schema.Diagnostics
	var none *schema.NoSpecsError
	switch {
	case errors.As(err, &ds):
		renderDiagnostics(a.stderr, ds)
		return nil, exitCodeError{exitError}
	case errors.As(err, &none):
		return nil, errors.New(noSpecsMessage(co, none.SubDirs))
	}
	return res, err
}

// defaultWebhookSecretFile is where the daemon's webhook secret (a Docker
// secret) appears.
const defaultWebhookSecretFile = "/run/secrets/swarmsync_webhook_secret"
