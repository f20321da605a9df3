package apply

import (
	"bytes"
	"embed"
	"fmt"
	"strings"
	"text/template"

	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/schema"
)

//go:embed templates/*.sh.tmpl
var templateFS embed.FS

// UserDataInput is what a user-data template can use. JoinToken is secret:
// the rendered user data goes only into Cloud.Launch.
type UserDataInput struct {
	Cluster string
	Group   string
	Role    providers.Role
	// Init is true for the launch that creates the Swarm (no join).
	Init bool
	// JoinToken is the worker or manager join token for Role (empty on Init).
	JoinToken string
	// ManagerAddr is a reachable manager's address (host:port) to join
	// through (empty on Init).
	ManagerAddr string
	// Provider is the provider kind ("aws", "local").
	Provider string
	// Daemon is set on the launch that creates the Swarm when the spec
	// enables the daemon: the user data then starts swarmsync's reconciler
	// as a global service on the managers.
	Daemon *schema.Daemon
}

// funcs are the template functions user data can use: shq quotes a value
// for a POSIX shell (spec values are input, never shell syntax).
var funcs = template.FuncMap{"shq": shellQuote}

// shellQuote quotes s as one single-quoted POSIX shell word.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// DefaultTemplate returns the default user-data template text for a provider
// kind.
func DefaultTemplate(kind string) (string, error) {
	b, err := templateFS.ReadFile("templates/" + kind + ".sh.tmpl")
	if err != nil {
		return "", fmt.Errorf("no default user-data template for provider %q", kind)
	}
	return string(b), nil
}

// RenderUserData renders tmpl (the spec's userData, or the provider's
// default when empty). The result carries a join token: never log it.
func RenderUserData(tmpl string, in UserDataInput) ([]byte, error) {
	if tmpl == "" {
		var err error
		if tmpl, err = DefaultTemplate(in.Provider); err != nil {
			return nil, err
		}
	}
	t, err := template.New("userData").Funcs(funcs).Option("missingkey=error").Parse(tmpl)
	if err != nil {
		return nil, fmt.Errorf("failed to parse the user-data template (spec field userData): %w", err)
	}
	if !in.Init && (in.JoinToken == "" || in.ManagerAddr == "") {
		return nil, fmt.Errorf("failed to render user data: a join needs a join token and a manager address")
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, in); err != nil {
		// Template execution errors name the template position, not data
		// values, so they carry no token.
		return nil, fmt.Errorf("failed to render the user-data template (spec field userData): %w", err)
	}
	return buf.Bytes(), nil
}
