// Package gitserve builds real Git repositories with the git CLI and serves
// them for real on loopback: git daemon (git://), smart HTTP (git
// http-backend behind net/http/cgi, with basic auth and a request log) and
// sshd on a loopback port; git daemon also on a lab bridge's host address
// (StartDaemonOn), for clients inside lab machines. It also makes throwaway OpenPGP keys with gpg
// for signed commits. Every git run uses an isolated configuration and a
// fixed identity and date. Test-only: never imported by product code.
package gitserve
