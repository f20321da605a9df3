// Package sync is the Git puller: it turns a source (a Git URL, a local
// repository or work tree, or a plain directory) plus a ref and a sub-path
// into a directory of spec files and the revision they came from.
//
// It owns cloning and fetching into a persistent bare-repository cache
// (guarded by a file lock, with a cheap remote-head check that skips all
// work when nothing moved), ref and commit pinning, materialising the
// sub-path of a commit's tree, authentication (https token/basic from the
// environment, ssh keys or agent with known_hosts checking), OpenPGP
// commit-signature verification, the files of a local work tree that
// differ from the HEAD it reads (so that callers can say the edits are not
// used), and typed errors that never carry credentials.
//
// It is the only package that imports go-git; everything it returns uses
// neutral types (Result, Commit, Revision). It must not parse specs (it
// hands a directory to schema), print, or read credentials from anywhere
// but the Auth it is given.
package sync
