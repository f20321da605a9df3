package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/swarmsync/swarmsync/plan"
)

// The step graph: one node per step (its number, symbol, action and
// target), grouped by the group it acts on, an edge from each dependency to
// the step that waits for it. Mermaid (for pull-request comments, which
// GitHub and GitLab render) and Graphviz dot (plan --format dot) draw the
// same graph.

// mermaidMaxSteps bounds the diagram of a markdown plan: renderers refuse or
// garble much larger graphs (GitHub draws at most 500 edges), and a reader
// gains nothing from them.
const mermaidMaxSteps = 100

// stepLabel is a step's one-line caption in a graph.
func stepLabel(i int, s plan.Step) string {
	label := fmt.Sprintf("%d %s %s %s", i+1, actionSymbols[s.Action], s.Action, stepTarget(s))
	if s.Batch > 0 {
		label += fmt.Sprintf(" [batch %d]", s.Batch)
	}
	return strings.TrimSpace(label)
}

// graphEdges calls edge(from, to) with step indexes, for each dependency
// the plan names (a dependency on an unknown step is not drawn).
func graphEdges(p *plan.Plan, edge func(from, to int)) {
	index := map[string]int{}
	for i, s := range p.Steps {
		index[s.ID] = i
	}
	for i, s := range p.Steps {
		for _, d := range s.DependsOn {
			if j, ok := index[d]; ok {
				edge(j, i)
			}
		}
	}
}

func groupCaption(g string) string {
	if g == "" {
		return "cluster"
	}
	return g
}

// mermaidGraph returns the plan's step graph as a Mermaid flowchart (without
// the code fence).
func mermaidGraph(p *plan.Plan) string {
	var b strings.Builder
	b.WriteString("flowchart TD\n")
	for gi, g := range groupOrder(p) {
		fmt.Fprintf(&b, "  subgraph g%d[\"%s\"]\n", gi+1, mermaidText(groupCaption(g)))
		for i, s := range p.Steps {
			if s.Group == g {
				fmt.Fprintf(&b, "    s%d[\"%s\"]\n", i+1, mermaidText(stepLabel(i, s)))
			}
		}
		b.WriteString("  end\n")
	}
	graphEdges(p, func(from, to int) { fmt.Fprintf(&b, "  s%d --> s%d\n", from+1, to+1) })
	return b.String()
}

// mermaidText escapes a quoted Mermaid label; a backtick could close the
// markdown code fence around the diagram.
func mermaidText(s string) string {
	r := strings.NewReplacer(`"`, "#quot;", "<", "#lt;", ">", "#gt;", "`", "'", "\n", " ")
	return r.Replace(s)
}

// renderPlanDot writes the plan's step graph in Graphviz's dot language
// (plan --format dot | dot -Tsvg > plan.svg).
func renderPlanDot(w io.Writer, js []byte) error {
	p, err := decodePlanJSON(js)
	if err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("digraph plan {\n")
	label := fmt.Sprintf("swarmsync plan for %s (commit %s): %s", p.Cluster, shortCommit(p.Source.Commit), planSummaryLine(p))
	if len(p.Steps) == 0 {
		label = fmt.Sprintf("swarmsync plan for %s (commit %s): no changes", p.Cluster, shortCommit(p.Source.Commit))
	}
	fmt.Fprintf(&b, "  label=%s;\n  labelloc=t;\n  rankdir=TB;\n  node [shape=box, fontname=\"monospace\"];\n", dotString(label))
	for gi, g := range groupOrder(p) {
		fmt.Fprintf(&b, "  subgraph cluster_%d {\n    label=%s;\n", gi+1, dotString(groupCaption(g)))
		for i, s := range p.Steps {
			if s.Group == g {
				fmt.Fprintf(&b, "    s%d [label=%s, tooltip=%s];\n", i+1, dotString(stepLabel(i, s)), dotString(s.Reason))
			}
		}
		b.WriteString("  }\n")
	}
	graphEdges(p, func(from, to int) { fmt.Fprintf(&b, "  s%d -> s%d;\n", from+1, to+1) })
	b.WriteString("}\n")
	_, err = io.WriteString(w, b.String())
	return err
}

// dotString quotes s as a dot string.
func dotString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", "")
	return `"` + r.Replace(s) + `"`
}
