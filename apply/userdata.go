package apply

import (
	"embed"
	"fmt"

	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/schema"
)

//go:embed templates/*.sh.tmpl
var templateFS embed.FS

// UserDataInput is what a launch renders its user data from. JoinToken is
// secret: templates never see it (schema.UserData), and the rendered user
// data goes only into Cloud.Launch.
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
// default when empty) with schema.RenderUserData: the template sees no
// token, only the join function. The result carries a join token: never
// log it.
func RenderUserData(tmpl string, in UserDataInput) ([]byte, error) {
	if tmpl == "" {
		var err error
		if tmpl, err = DefaultTemplate(in.Provider); err != nil {
			return nil, err
		}
	}
	return schema.RenderUserData(tmpl, schema.UserData{
		Cluster: in.Cluster, Group: in.Group, Role: string(in.Role), Init: in.Init,
		ManagerAddr: in.ManagerAddr, Provider: in.Provider, Daemon: in.Daemon,
	}, in.JoinToken)
}
