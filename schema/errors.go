package schema

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"cuelang.org/go/cue"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/token"
)

// message renders a CUE error's message without its position.
func message(e cueerrors.Error) string {
	f, a := e.Msg()
	return fmt.Sprintf(f, a...)
}

// filePos converts a CUE position; fallback names the file when the
// position is unknown.
func (l *loader) filePos(p token.Pos, fallback string) Pos {
	if !p.IsValid() || p.Filename() == "" {
		return Pos{File: fallback}
	}
	return Pos{File: p.Filename(), Line: p.Line(), Col: p.Column()}
}

// valuePos is the position of v when it is in a spec file.
func (l *loader) valuePos(v cue.Value, fallback string) Pos {
	if p := v.Pos(); p.IsValid() && p.Filename() != schemaFile {
		return l.filePos(p, fallback)
	}
	return Pos{File: fallback}
}

// posOf is the position in a spec file of the field at sels, or of its
// nearest ancestor that has one.
func (u *unit) posOf(sels []cue.Selector, l *loader) Pos {
	p, _ := u.ancestorPos(sels, l)
	return p
}

// ancestorPos is posOf with the depth of the field found (-1 for none).
func (u *unit) ancestorPos(sels []cue.Selector, l *loader) (Pos, int) {
	for i := len(sels); i >= 0; i-- {
		if i == u.inCluster && i > 0 {
			if p, ok := u.declared[label(sels[i-1])]; ok {
				return p, i
			}
		}
		v := u.data.LookupPath(cue.MakePath(sels[:i]...))
		if !v.Exists() {
			continue
		}
		if p := v.Pos(); p.IsValid() && p.Filename() != schemaFile {
			return l.filePos(p, u.file), i
		}
	}
	return Pos{File: u.file}, -1
}

// selectors turns an error path into selectors: an element is a list
// index only where the value at that point is a list.
func (u *unit) selectors(path []string) []cue.Selector {
	sels := make([]cue.Selector, 0, len(path))
	for _, s := range path {
		switch {
		case strings.HasPrefix(s, "#"):
			sels = append(sels, cue.Def(s))
		case isIndex(s) && u.isList(sels):
			n, _ := strconv.Atoi(s)
			sels = append(sels, cue.Index(n))
		default:
			sels = append(sels, cue.Str(s))
		}
	}
	return sels
}

// label is a selector as text: the unquoted name of a field, or the index
// or definition name.
func label(s cue.Selector) string {
	if s.LabelType() == cue.StringLabel {
		return s.Unquoted()
	}
	return s.String()
}

func isIndex(s string) bool {
	if s == "" || len(s) > 9 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// errGroup is every CUE error reported for one field.
type errGroup struct {
	sels      []cue.Selector
	msgs      []string
	primary   []token.Pos // each error's own position
	positions []token.Pos // every position the errors name
}

const (
	msgNotAllowed = "field not allowed"
	msgRequired   = "field is required but not present"
)

// addErrors turns CUE errors into diagnostics: one per field, saying what
// the schema expects there.
func (l *loader) addErrors(u *unit, errs []cueerrors.Error) {
	var order []string
	groups := map[string]*errGroup{}
	for _, e := range errs {
		raw := e.Path()
		if len(raw) >= u.strip {
			raw = raw[u.strip:]
		}
		sels := u.selectors(raw)
		key := cue.MakePath(sels...).String()
		if !u.packagePhase && u.isCovered(sels) {
			continue // already reported by the package itself
		}
		g := groups[key]
		if g == nil {
			g = &errGroup{sels: sels}
			groups[key] = g
			order = append(order, key)
		}
		g.msgs = append(g.msgs, message(e))
		g.primary = append(g.primary, e.Position())
		g.positions = append(g.positions, e.InputPositions()...)
		g.positions = append(g.positions, e.Position())
	}
	for _, key := range order {
		l.diags = append(l.diags, l.groupDiagnostic(u, key, groups[key]))
	}
}

func (l *loader) groupDiagnostic(u *unit, key string, g *errGroup) Diagnostic {
	d := Diagnostic{Path: key, Pos: u.errorPos(g, l)}
	has := func(m string) bool {
		for _, x := range g.msgs {
			if strings.Contains(x, m) {
				return true
			}
		}
		return false
	}
	expect := l.expect(u, g.sels)
	var dataVal cue.Value // the spec's own value of the field, if it sets one
	if u.data.Exists() {
		dataVal = u.data.LookupPath(cue.MakePath(g.sels...))
	}
	switch {
	case has(msgNotAllowed):
		name := ""
		if n := len(g.sels); n > 0 {
			name = label(g.sels[n-1])
		}
		d.Summary = fmt.Sprintf("unknown field %q", name)
		allowed := l.fieldsAt(u, g.sels[:max(len(g.sels)-1, 0)])
		if s := suggest(name, allowed); s != "" {
			d.Detail = fmt.Sprintf("did you mean %s?", s)
		} else if len(allowed) > 0 {
			d.Detail = "allowed fields: " + strings.Join(allowed, ", ")
		}
	case has(msgRequired) || has("incomplete value") && !dataVal.Exists():
		d.Summary = "missing required field"
		if expect != "" {
			d.Detail = "expected " + expect
		}
	case dataVal.Exists() && dataVal.Err() != nil && len(l.specPositions(u, g)) > 1 && !(expect != "" && has("errors in empty disjunction")):
		// The spec contradicts itself: say so and where.
		d.Summary = bestMessage(g.msgs)
		d.Detail = "values set at " + strings.Join(l.specPositions(u, g), " and ")
	case expect != "":
		d.Summary = "invalid value"
		if v := u.data.LookupPath(cue.MakePath(g.sels...)); u.data.Exists() && v.Exists() && v.Err() == nil {
			if s := fmt.Sprint(v); !strings.Contains(s, "\n") && len(s) <= 80 {
				d.Summary = "invalid value " + s
			}
		}
		d.Detail = "expected " + expect
	case has("mismatched types") && l.schemaAt(u, g.sels).Exists():
		// A map where a list goes, a number where a map goes...: say what
		// goes there instead of CUE's conflict between the two.
		d.Summary = "invalid value"
		if dataVal.Exists() && dataVal.Err() == nil {
			if s := fmt.Sprint(dataVal); !strings.Contains(s, "\n") && len(s) <= 80 {
				d.Summary = "invalid value " + s
			}
		}
		want := l.schemaAt(u, g.sels)
		d.Detail = "expected " + kindExpect(want)
		if want.IncompleteKind() == cue.StringKind && dataVal.IncompleteKind()&(cue.NumberKind|cue.BoolKind) != 0 {
			d.Detail += fmt.Sprintf(": quote it (%q)", fmt.Sprint(dataVal))
		}
	default:
		d.Summary = bestMessage(g.msgs)
	}
	return d
}

// kindExpect says what the schema value s expects when no @expect says it:
// a map and its fields, a list and its elements.
func kindExpect(s cue.Value) string {
	switch k := s.IncompleteKind(); {
	case k == cue.ListKind:
		return "a list (one \"- \" item per line) whose items are " + kindExpect(s.LookupPath(cue.MakePath(cue.AnyIndex)))
	case k&cue.StructKind != 0:
		return describe(s, s)
	case k == cue.StringKind:
		return "a string"
	case k == cue.IntKind:
		return "an integer"
	case k&cue.NumberKind == k:
		return "a number"
	case k == cue.BoolKind:
		return "true or false"
	default:
		return k.String()
	}
}

// bestMessage picks the most specific of CUE's messages for one field: the
// last one that is not a disjunction summary.
func bestMessage(msgs []string) string {
	best := msgs[len(msgs)-1]
	for _, m := range msgs {
		if !strings.Contains(m, "errors in empty disjunction") {
			best = m
		}
	}
	return best
}

// fieldsAt lists the field names the schema allows in the struct at sels.
func (l *loader) fieldsAt(u *unit, sels []cue.Selector) []string {
	if len(sels) < u.inCluster {
		if len(sels) == 0 {
			return []string{"clusters"}
		}
		return nil
	}
	v := l.schemaAt(u, sels)
	if !v.Exists() {
		return nil
	}
	var names []string
	it, err := v.Fields(cue.Optional(true))
	if err != nil {
		return nil
	}
	for it.Next() {
		names = append(names, label(it.Selector()))
	}
	return names
}

// schemaChild follows one selector in a schema value, through pattern
// constraints ([string]: T) and list element types.
func schemaChild(v cue.Value, s cue.Selector) cue.Value {
	if s.Type() == cue.IndexLabel {
		return v.LookupPath(cue.MakePath(cue.AnyIndex))
	}
	if it, err := v.Fields(cue.Optional(true)); err == nil {
		for it.Next() {
			if label(it.Selector()) == label(s) {
				return it.Value()
			}
		}
	}
	return v.LookupPath(cue.MakePath(cue.AnyString))
}

// errorPos picks where a field's errors are reported: the field in the spec
// when the spec sets it; else a spec position CUE names (a shared default
// that conflicts); else the nearest ancestor the spec sets.
func (u *unit) errorPos(g *errGroup, l *loader) Pos {
	if u.data.Exists() {
		v := u.data.LookupPath(cue.MakePath(g.sels...))
		if !v.Exists() && u.packagePhase {
			if p, ok := specPos(g.primary); ok {
				return l.filePos(p, u.file)
			}
		}
		if !v.Exists() {
			// The field comes from the schema or a shared default: point at
			// the nearest field the spec sets, when that is in the cluster.
			if pos, depth := u.ancestorPos(g.sels, l); depth >= u.inCluster {
				return pos
			}
			if p, ok := specPos(g.primary); ok {
				return l.filePos(p, u.file)
			}
			return u.posOf(g.sels, l)
		}
		if p := v.Pos(); p.IsValid() && p.Filename() != schemaFile {
			return l.filePos(p, u.file)
		}
	}
	if p, ok := specPos(g.positions); ok {
		return l.filePos(p, u.file)
	}
	return u.posOf(g.sels, l)
}

// specPos returns the first position that is in a spec file.
func specPos(ps []token.Pos) (token.Pos, bool) {
	for _, p := range ps {
		if p.IsValid() && p.Filename() != schemaFile && p.Filename() != "" {
			return p, true
		}
	}
	return token.NoPos, false
}

// schemaAt is the schema of the field at sels (relative to u).
func (l *loader) schemaAt(u *unit, sels []cue.Selector) cue.Value {
	if len(sels) < u.inCluster {
		return cue.Value{}
	}
	v := l.def
	for _, s := range sels[u.inCluster:] {
		v = schemaChild(v, s)
		if !v.Exists() {
			return v
		}
	}
	return v
}

// expect is the @expect attribute of the field at sels: what the schema
// says the field expects.
func (l *loader) expect(u *unit, sels []cue.Selector) string {
	if len(sels) == 0 {
		return ""
	}
	if u.value.Exists() {
		a := u.value.LookupPath(cue.MakePath(sels...)).Attribute("expect")
		if s, err := a.String(0); err == nil {
			return s
		}
	}
	if v := l.schemaAt(u, sels); v.Exists() {
		a := v.Attribute("expect")
		if s, err := a.String(0); err == nil {
			return s
		}
	}
	return ""
}

// isCovered reports whether the package's own errors already cover the
// field at sels (or one of its ancestors).
func (u *unit) isCovered(sels []cue.Selector) bool {
	for i := len(sels); i >= 0 && len(u.covered) > 0; i-- {
		if u.covered[cue.MakePath(sels[:i]...).String()] {
			return true
		}
	}
	return false
}

// isList reports whether the field at sels is a list in the spec or in the
// unified value.
func (u *unit) isList(sels []cue.Selector) bool {
	p := cue.MakePath(sels...)
	if u.data.Exists() && u.data.LookupPath(p).IncompleteKind() == cue.ListKind {
		return true
	}
	return u.value.Exists() && u.value.LookupPath(p).IncompleteKind() == cue.ListKind
}

// specPositions lists the distinct positions in spec files that a group of
// errors names.
func (l *loader) specPositions(u *unit, g *errGroup) []string {
	var at []string
	for _, p := range g.positions {
		if p.IsValid() && p.Filename() != schemaFile && p.Filename() != "" {
			if s := l.filePos(p, u.file).String(); !slices.Contains(at, s) {
				at = append(at, s)
			}
		}
	}
	return at
}
