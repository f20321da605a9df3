package schema

import (
	"cmp"
	"slices"
	"strings"
)

// Diagnostic is one problem found in a spec: where it is, which field, and
// what was expected.
type Diagnostic struct {
	// Pos is the file (relative to the spec directory), line and column.
	Pos Pos `json:"pos"`
	// Path is the field path in CUE notation (managers.count,
	// workers.general.instance, clusters.prod.update.delay); empty for
	// problems that belong to a whole file (syntax errors).
	Path string `json:"path,omitempty"`
	// Summary says what is wrong, in a few words.
	Summary string `json:"summary"`
	// Detail says what is expected or what to do; may be empty.
	Detail string `json:"detail,omitempty"`

	// rule is set when the problem was found by a rule the loader checks
	// after the CUE schema (cron and duration syntax, one provider, ...):
	// such problems are not in the generated JSON Schema either.
	rule bool
}

// String renders the diagnostic as "file:line:col: path: summary; detail".
func (d Diagnostic) String() string {
	var b strings.Builder
	if p := d.Pos.String(); p != "" {
		b.WriteString(p)
		b.WriteString(": ")
	}
	if d.Path != "" {
		b.WriteString(d.Path)
		b.WriteString(": ")
	}
	b.WriteString(d.Summary)
	if d.Detail != "" {
		b.WriteString("; ")
		b.WriteString(d.Detail)
	}
	return b.String()
}

// Diagnostics is every problem found in one load. As an error it renders one
// diagnostic per line.
type Diagnostics []Diagnostic

// Error renders the diagnostics one per line.
func (ds Diagnostics) Error() string {
	lines := make([]string, len(ds))
	for i, d := range ds {
		lines[i] = d.String()
	}
	return strings.Join(lines, "\n")
}

// sort orders diagnostics by file, line, column and path and drops exact
// duplicates.
func (ds Diagnostics) sort() Diagnostics {
	slices.SortStableFunc(ds, func(a, b Diagnostic) int {
		return cmp.Or(
			cmp.Compare(a.Pos.File, b.Pos.File),
			cmp.Compare(a.Pos.Line, b.Pos.Line),
			cmp.Compare(a.Pos.Col, b.Pos.Col),
			cmp.Compare(a.Path, b.Path),
			cmp.Compare(a.Summary, b.Summary),
		)
	})
	return slices.Compact(ds)
}
