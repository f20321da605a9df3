package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/swarmsync/swarmsync/plan"
	"github.com/swarmsync/swarmsync/schema"
)

// The plan views render the plan JSON: the human formats are decoded from
// the same bytes the json format prints, so they never drift apart.

// markdownLimit bounds a markdown plan (pull-request comments are limited
// to 65,536 characters).
const markdownLimit = 65000

// actionSymbols are the one-character (ASCII) marks of each action.
var actionSymbols = map[plan.Action]string{
	plan.ActionLaunch:          "+",
	plan.ActionAwaitJoin:       ".",
	plan.ActionLabel:           "~",
	plan.ActionDrain:           "!",
	plan.ActionAwaitDrained:    ".",
	plan.ActionDemote:          "v",
	plan.ActionPromote:         "^",
	plan.ActionRemoveNode:      "x",
	plan.ActionTerminate:       "-",
	plan.ActionRotateJoinToken: "@",

	plan.ActionCreateSecurityGroup: "#",
	plan.ActionAuthorizeIngress:    "#",
	plan.ActionRegisterTargets:     ">",
	plan.ActionDeregisterTargets:   "<",
	plan.ActionAwaitDeregistered:   ".",
	plan.ActionCreateListener:      "=",
	plan.ActionDeleteListener:      "=",
}

// environmentSymbols is the second legend line, printed when a plan has
// steps on the AWS environment.
const environmentSymbols = "         # security group  > register in target groups  < deregister  = listener\n"

// summaryOrder is the order of the summary line; waits are not listed.
var summaryOrder = []struct {
	action plan.Action
	verb   string
}{
	{plan.ActionLaunch, "to launch"},
	{plan.ActionLabel, "to label"},
	{plan.ActionDrain, "to drain"},
	{plan.ActionPromote, "to promote"},
	{plan.ActionDemote, "to demote"},
	{plan.ActionRemoveNode, "to remove from the Swarm"},
	{plan.ActionTerminate, "to terminate"},
	{plan.ActionRotateJoinToken, "join token rotation"},
	{plan.ActionCreateSecurityGroup, "security group to create"},
	{plan.ActionAuthorizeIngress, "security group rule set(s) to add"},
	{plan.ActionRegisterTargets, "to register in target groups"},
	{plan.ActionDeregisterTargets, "to deregister from target groups"},
	{plan.ActionCreateListener, "listener(s) to create"},
	{plan.ActionDeleteListener, "listener(s) to delete"},
}

// planSummaryLine is "Plan: 2 to launch, 1 to drain, 1 to terminate."
// Launches count machines, the other actions count steps.
func planSummaryLine(p *plan.Plan) string {
	counts := map[plan.Action]int{}
	for _, s := range p.Steps {
		if s.Action == plan.ActionLaunch {
			counts[s.Action] += max(1, s.Count)
		} else {
			counts[s.Action]++
		}
	}
	var parts []string
	for _, x := range summaryOrder {
		if n := counts[x.action]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, x.verb))
		}
	}
	if len(parts) == 0 {
		return fmt.Sprintf("Plan: %s only.", count(len(p.Steps), "wait"))
	}
	return "Plan: " + strings.Join(parts, ", ") + "."
}

func shortCommit(c string) string {
	prefix := ""
	if rest, ok := strings.CutPrefix(c, "dir:"); ok {
		prefix, c = "dir:", rest
	}
	if rest, ok := strings.CutPrefix(c, "sha256:"); ok {
		c = rest
	}
	if len(c) > 7 {
		c = c[:7]
	}
	if c == "" {
		return "unknown"
	}
	return prefix + c
}

// groupOrder returns the plan's groups: managers first, then the others by
// name, cluster-wide steps ("") last.
func groupOrder(p *plan.Plan) []string {
	seen := map[string]bool{}
	var groups []string
	for _, s := range p.Steps {
		if !seen[s.Group] {
			seen[s.Group] = true
			groups = append(groups, s.Group)
		}
	}
	rank := func(g string) int {
		switch g {
		case schema.ManagersGroup:
			return 0
		case "":
			return 2
		}
		return 1
	}
	slices.SortStableFunc(groups, func(a, b string) int {
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra - rb
		}
		return strings.Compare(a, b)
	})
	return groups
}

// stepTarget describes what a step acts on.
func stepTarget(s plan.Step) string {
	switch {
	case s.Action == plan.ActionLaunch:
		role := string(s.Role)
		if role == "" {
			role = "machine"
		}
		what := fmt.Sprintf("%d new %s", s.Count, role)
		if s.Count != 1 {
			what += "s"
		}
		if s.Init {
			what += " (initialises the Swarm)"
		}
		return what
	case s.Action == plan.ActionRotateJoinToken:
		var t []string
		if s.RotateWorker {
			t = append(t, "worker")
		}
		if s.RotateManager {
			t = append(t, "manager")
		}
		return strings.Join(t, " and ") + " token"
	case s.Action == plan.ActionCreateSecurityGroup || s.Action == plan.ActionAuthorizeIngress:
		return "managed security group"
	case s.Action == plan.ActionCreateListener || s.Action == plan.ActionDeleteListener:
		return fmt.Sprintf("%s %d", s.Protocol, s.Port)
	case s.Instance != "" && s.Node != "":
		return s.Instance + " (node " + s.Node + ")"
	case s.Instance != "":
		return s.Instance
	case s.Node != "":
		return "node " + s.Node
	case s.LaunchStep != "":
		return "nodes of " + s.LaunchStep
	}
	return ""
}

// stepDetail is the extra a step carries (labels, availability, target
// groups, rules).
func stepDetail(s plan.Step) string {
	switch s.Action {
	case plan.ActionLabel:
	case plan.ActionRegisterTargets, plan.ActionDeregisterTargets, plan.ActionAwaitDeregistered, plan.ActionDeleteListener:
		return "target groups: " + strings.Join(s.TargetGroups, " ")
	case plan.ActionCreateListener:
		return fmt.Sprintf("target group %s, targets: %s", s.TargetGroupName, strings.Join(s.Targets, " "))
	case plan.ActionCreateSecurityGroup:
		return "in " + s.VPC
	case plan.ActionAuthorizeIngress:
		var r []string
		for _, x := range s.Rules {
			r = append(r, fmt.Sprintf("%d/%s from %s", x.FromPort, x.Protocol, x.SourceGroup))
		}
		return "inbound: " + strings.Join(r, ", ")
	default:
		return ""
	}
	var kv []string
	for _, k := range slices.Sorted(maps.Keys(s.Labels)) {
		kv = append(kv, k+"="+s.Labels[k])
	}
	return fmt.Sprintf("availability=%s %s", s.Availability, strings.Join(kv, " "))
}

// decodePlanJSON decodes the plan for a text view: every string escaped as
// a field (output.go).
func decodePlanJSON(js []byte) (*plan.Plan, error) {
	p, err := plan.UnmarshalPlan(js)
	if err != nil {
		return nil, fmt.Errorf("failed to render plan: %w", err)
	}
	escapeFields(p)
	return p, nil
}

// renderPlanText writes the plan for a terminal.
func renderPlanText(w io.Writer, js []byte) error {
	p, err := decodePlanJSON(js)
	if err != nil {
		return err
	}
	var b strings.Builder
	commit := shortCommit(p.Source.Commit)
	if len(p.Steps) == 0 {
		fmt.Fprintf(&b, "No changes. Cluster %s matches its spec (commit %s).\n", p.Cluster, commit)
	} else {
		fmt.Fprintf(&b, "Plan for cluster %s (commit %s, observation %.12s: %d instances, %d nodes)\n",
			p.Cluster, commit, p.Observation.Fingerprint, p.Observation.Instances, p.Observation.Nodes)
		b.WriteString("Symbols: + launch  . wait  ~ label  ! drain  v demote  x remove node  - terminate  @ rotate token\n")
		if slices.ContainsFunc(p.Steps, func(s plan.Step) bool { return strings.ContainsAny(actionSymbols[s.Action], "#<>=") }) {
			b.WriteString(environmentSymbols)
		}
		index := map[string]int{}
		for i, s := range p.Steps {
			index[s.ID] = i + 1
		}
		for _, g := range groupOrder(p) {
			name := g
			if name == "" {
				name = "cluster"
			}
			fmt.Fprintf(&b, "\n%s\n", name)
			for i, s := range p.Steps {
				if s.Group != g {
					continue
				}
				fmt.Fprintf(&b, "  %3d %s %s %s", i+1, actionSymbols[s.Action], s.Action, stepTarget(s))
				if s.Batch > 0 {
					fmt.Fprintf(&b, " [batch %d]", s.Batch)
				}
				b.WriteString("\n")
				if d := stepDetail(s); d != "" {
					fmt.Fprintf(&b, "        %s\n", strings.TrimSpace(d))
				}
				fmt.Fprintf(&b, "        why: %s\n", s.Reason)
				if len(s.DependsOn) > 0 {
					var after []string
					for _, d := range s.DependsOn {
						after = append(after, fmt.Sprintf("%d", index[d]))
					}
					fmt.Fprintf(&b, "        after: %s\n", strings.Join(after, ", "))
				}
			}
		}
		fmt.Fprintf(&b, "\n%s\n", planSummaryLine(p))
	}
	if len(p.Notes) > 0 {
		b.WriteString("\nNotes:\n")
		for _, n := range p.Notes {
			fmt.Fprintf(&b, "  - %s\n", n)
		}
	}
	_, err = io.WriteString(w, b.String())
	return err
}

// renderPlanMarkdown writes the plan for a pull-request comment: the
// summary and notes first, the step graph as a Mermaid diagram, the steps
// in a collapsible table, never longer than markdownLimit characters (the
// diagram and the table are cut, never the summary or the notes, and it
// says what was cut).
func renderPlanMarkdown(w io.Writer, js []byte) error {
	p, err := decodePlanJSON(js)
	if err != nil {
		return err
	}
	var head strings.Builder
	commit := shortCommit(p.Source.Commit)
	fmt.Fprintf(&head, "### swarmsync plan for `%s`\n\n", p.Cluster)
	if len(p.Steps) == 0 {
		fmt.Fprintf(&head, "**No changes.** Cluster `%s` matches its spec (commit `%s`).\n", p.Cluster, commit)
	} else {
		fmt.Fprintf(&head, "**%s**\n", planSummaryLine(p))
	}
	fmt.Fprintf(&head, "\nSource `%s` at `%s`; observation `%.12s` (%d instances, %d nodes, %d managers).\n",
		mdCode(p.Source.Repo), commit, p.Observation.Fingerprint, p.Observation.Instances, p.Observation.Nodes, p.Observation.Managers)
	if len(p.Notes) > 0 {
		head.WriteString("\n**Notes**\n\n")
		for _, n := range p.Notes {
			fmt.Fprintf(&head, "- %s\n", mdEscape(n))
		}
	}
	if len(p.Steps) == 0 {
		_, err = io.WriteString(w, head.String())
		return err
	}
	var rows []string
	for i, s := range p.Steps {
		reason := s.Reason
		if d := stepDetail(s); d != "" {
			reason += " (" + strings.TrimSpace(d) + ")"
		}
		rows = append(rows, fmt.Sprintf("| %d | `%s` | %s | %s | %s | %s |\n", i+1, actionSymbols[s.Action], s.Action,
			mdEscape(s.Group), mdEscape(stepTarget(s)), mdEscape(reason)))
	}
	tableHead := fmt.Sprintf("\n<details><summary>%d steps</summary>\n\n| # | | action | group | target | reason |\n|---|---|---|---|---|---|\n", len(p.Steps))
	const tail = "\n</details>\n"
	budget := markdownLimit - head.Len() - len(tableHead) - len(tail) - 200 // room for the cut notice
	// The step graph comes whole or not at all, and leaves room for
	// the table's first rows.
	graph := fmt.Sprintf("\n_The step graph has %d steps, too many to draw here: `swarmsync plan --format dot` draws it._\n", len(p.Steps))
	if len(p.Steps) <= mermaidMaxSteps {
		if g := "\n```mermaid\n" + mermaidGraph(p) + "```\n"; len(g) <= budget/2 {
			graph = g
		}
	}
	head.WriteString(graph)
	budget -= len(graph)
	var body strings.Builder
	shown := 0
	for _, r := range rows {
		if body.Len()+len(r) > budget {
			break
		}
		body.WriteString(r)
		shown++
	}
	if shown < len(rows) {
		fmt.Fprintf(&body, "\n_%d of %d steps not shown: this comment is limited to %d characters. Run `swarmsync plan` for the whole plan._\n", len(rows)-shown, len(rows), markdownLimit)
	}
	_, err = io.WriteString(w, head.String()+tableHead+body.String()+tail)
	return err
}

// mdEscape keeps table cells and list items intact.
func mdEscape(s string) string {
	r := strings.NewReplacer("|", `\|`, "\n", " ", "<", "&lt;", ">", "&gt;")
	return r.Replace(s)
}

func mdCode(s string) string { return strings.ReplaceAll(s, "`", "'") }
