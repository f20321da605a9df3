package schema

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"text/template"
)

// UserDataLimit is EC2's limit on user data: 16 KB in raw form, before the
// base64 encoding the API adds. The spec's userData is checked against it
// after rendering (a join, with a join token and a manager address of the
// longest forms).
const UserDataLimit = 16 * 1024

// UserData is what a user-data template sees. It holds no join token: the
// template writes the join command with the function join, whose value
// prints only whole (no width, precision, slice or index can cut it), so no
// template can print the token in pieces that redaction would miss.
//
//	{{.Cluster}} {{.Group}} {{.Role}} {{.Init}} {{.ManagerAddr}} {{.Provider}} {{.Daemon}}
//	{{shq X}}  →  X as one single-quoted shell word
//	{{join "$private_ip"}}  →  docker swarm join --token … --advertise-addr "$private_ip" MANAGER
type UserData struct {
	Cluster string
	Group   string
	Role    string // manager or worker
	// Init is true for the launch that creates the Swarm (no join).
	Init bool
	// ManagerAddr is a reachable manager's address (host:port) to join
	// through (empty on Init).
	ManagerAddr string
	// Provider is the provider kind ("aws", "local").
	Provider string
	// Daemon is set on the launch that creates the Swarm when the spec
	// enables the daemon: the user data then starts swarmsync's reconciler
	// as a global service on the managers.
	Daemon *Daemon
}

// shellQuote quotes s as one single-quoted POSIX shell word ({{shq X}}:
// spec values are input, never shell syntax).
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// joinCommand is the value of {{join ADDR}}. It has no exported field and
// no method a template can call; fmt prints it whole whatever the verb.
type joinCommand struct{ text string }

// Format writes the whole command, ignoring verb, width and precision.
func (j joinCommand) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(j.text)) }

// RenderUserData renders the template tmpl for in; token is the join token
// for in.Role (empty on Init). The result carries the token: never log it.
func RenderUserData(tmpl string, in UserData, token string) ([]byte, error) {
	if !in.Init && (token == "" || in.ManagerAddr == "") {
		return nil, errors.New("failed to render user data: a join needs a join token and a manager address")
	}
	t, err := parseUserData(tmpl, in, token)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, in); err != nil {
		// Execution errors name the template position and the field or
		// function, never a value.
		return nil, fmt.Errorf("failed to render the user-data template (spec field userData): %s", strings.TrimPrefix(err.Error(), "template: "))
	}
	return buf.Bytes(), nil
}

func parseUserData(tmpl string, in UserData, token string) (*template.Template, error) {
	funcs := template.FuncMap{"shq": shellQuote, "join": func(advertise string) (joinCommand, error) {
		if in.Init {
			return joinCommand{}, errors.New("join is for a joining node: put it under {{if not .Init}}")
		}
		return joinCommand{fmt.Sprintf("docker swarm join --token %s --advertise-addr %q %s", token, advertise, in.ManagerAddr)}, nil
	}}
	t, err := template.New("userData").Option("missingkey=error").Funcs(funcs).Parse(tmpl)
	if err != nil {
		return nil, fmt.Errorf("failed to parse the user-data template (spec field userData): %s", strings.TrimPrefix(err.Error(), "template: "))
	}
	return t, nil
}

// placeholderToken and placeholderAddr have the longest forms of a join
// token and a manager address, for the size check.
var (
	placeholderToken = "SWMTKN-1-" + strings.Repeat("x", 50) + "-" + strings.Repeat("y", 25)
	placeholderAddr  = "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"
)

// CheckUserData renders tmpl as the launch that creates a Swarm (with the
// spec's daemon, nil when it is not enabled) and as a
// join (as a manager and as a worker), and says what is wrong: syntax, an
// unknown field or function, or a size over UserDataLimit. It returns ""
// for a template that renders.
func CheckUserData(tmpl, provider string, daemon *Daemon) string {
	variants := []UserData{
		{Cluster: strings.Repeat("c", 63), Group: "managers", Role: "manager", Init: true, Provider: provider, Daemon: daemon},
		{Cluster: strings.Repeat("c", 63), Group: "managers", Role: "manager", ManagerAddr: placeholderAddr, Provider: provider},
		{Cluster: strings.Repeat("c", 63), Group: "workers/" + strings.Repeat("w", 63), Role: "worker", ManagerAddr: placeholderAddr, Provider: provider},
	}
	for _, in := range variants {
		token := placeholderToken
		if in.Init {
			token = ""
		}
		out, err := RenderUserData(tmpl, in, token)
		if err != nil {
			_, why, _ := strings.Cut(err.Error(), "(spec field userData): ")
			if strings.HasPrefix(err.Error(), "failed to parse") {
				return "the template does not parse: " + why
			}
			return "the template does not render: " + why
		}
		if len(out) > UserDataLimit {
			return fmt.Sprintf("the rendered user data is %d bytes: EC2 accepts at most %d bytes (16 KB before base64 encoding)", len(out), UserDataLimit)
		}
	}
	return ""
}
