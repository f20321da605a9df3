package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/swarmsync/swarmsync/internal/gitserve"
	"github.com/swarmsync/swarmsync/internal/testenv"
)

// servedToken is the token the scripts' smart-HTTP server accepts (user
// "deploy").
const servedToken = "s3cr3t-t0ken-4711"

// TestSourceServedScripts runs the scripts in testdata/script_served, whose
// repositories are served for real on loopback. Each script gets its own
// servers over $WORK/srv:
//
//	$GITHTTP   smart HTTP (git http-backend), basic auth deploy:$TOKEN;
//	           every request is appended to $WORK/http.log as
//	           "METHOD PATH STATUS"
//	$GITDAEMON git daemon
//	$SSHURL    ssh://root@127.0.0.1:PORT (sshd; condition [sshd]), with
//	           $SSH_KEY, $SSH_OTHER_KEY and $SSH_KNOWN_HOSTS_FILE
func TestSourceServedScripts(t *testing.T) {
	testenv.NeedCommands(t, "git")
	sshd := os.Geteuid() == 0
	if _, err := os.Stat("/usr/sbin/sshd"); err != nil {
		sshd = false
	}
	fixtures, err := filepath.Abs("../../fixtures")
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script_served",
		Condition: func(cond string) (bool, error) {
			if cond != "sshd" {
				return false, fmt.Errorf("unknown condition %q", cond)
			}
			if !sshd && testenv.Required() {
				return false, fmt.Errorf("sshd scripts need root and /usr/sbin/sshd (%s=1)", testenv.RequireLabEnv)
			}
			return sshd, nil
		},
		Setup: func(env *testscript.Env) error {
			base := filepath.Join(env.WorkDir, "srv")
			if err := os.MkdirAll(base, 0o755); err != nil {
				return err
			}
			srv, h := gitserve.NewHTTPServer(t, base, "deploy", servedToken)
			env.Defer(srv.Close)
			logPath := filepath.Join(env.WorkDir, "http.log")
			h.OnRequest(func(r gitserve.Request) {
				f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
				if err != nil {
					return
				}
				fmt.Fprintf(f, "%s %s %d\n", r.Method, r.Path, r.Status)
				f.Close()
			})
			env.Setenv("GITHTTP", h.URL)
			env.Setenv("TOKEN", servedToken)
			env.Setenv("GITDAEMON", gitserve.StartDaemon(t, base).URL)
			env.Setenv("FIXTURES", fixtures)
			if sshd {
				s := gitserve.StartSSHD(t)
				env.Setenv("SSHURL", "ssh://root@"+s.Addr)
				env.Setenv("SSH_KEY", s.ClientKey)
				env.Setenv("SSH_OTHER_KEY", s.OtherKey)
				env.Setenv("SSH_KNOWN_HOSTS_FILE", s.KnownHosts)
			}
			return nil
		},
	})
}
