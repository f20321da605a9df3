package schema

import (
	"fmt"
	"strings"

	"cuelang.org/go/cue"
)

// Indentation slips in YAML. A section left empty ("general:" with nothing
// indented below it) is null, and the lines meant for it land one level up:
// CUE then reports a null/struct conflict and unknown fields or a group
// named "count". These checks run before the schema's and say what
// happened instead, at the lines concerned; the paths they cover get no
// other diagnostic.

// dataField is one field of the spec's own value, in file order.
type dataField struct {
	sel cue.Selector
	v   cue.Value
}

func dataFields(v cue.Value) []dataField {
	var out []dataField
	it, err := v.Fields()
	if err != nil {
		return nil
	}
	for it.Next() {
		out = append(out, dataField{sel: it.Selector(), v: it.Value()})
	}
	return out
}

// expectsStruct reports whether the schema value s wants a map (and not
// null).
func expectsStruct(s cue.Value) bool {
	k := s.IncompleteKind()
	return s.Exists() && k&cue.StructKind != 0 && k&cue.NullKind == 0
}

// explicitField reports whether the schema struct s declares the field
// name (not only through a pattern).
func explicitField(s cue.Value, name string) bool {
	it, err := s.Fields(cue.Optional(true))
	if err != nil {
		return false
	}
	for it.Next() {
		if label(it.Selector()) == name {
			return true
		}
	}
	return false
}

// allows reports whether the schema struct s accepts a field name with a
// value of the given kind (through a declared field or a pattern).
func allows(s cue.Value, name string, v cue.Value) bool {
	if explicitField(s, name) {
		return true
	}
	child := s.LookupPath(cue.MakePath(cue.AnyString))
	return child.Exists() && fits(child, v)
}

// fits reports whether a value's kind is one the schema value accepts.
func fits(s, v cue.Value) bool {
	return s.IncompleteKind()&v.IncompleteKind() != 0
}

// validAt reports whether v is valid (and complete, defaults applied)
// against the schema value s.
func validAt(s, v cue.Value) bool {
	return s.Unify(v).Validate(cue.Concrete(true)) == nil
}

// describe says what a schema struct expects: its @expect, or its fields.
func describe(s cue.Value, field cue.Value) string {
	for _, v := range []cue.Value{field, s} {
		a := v.Attribute("expect")
		if e, err := a.String(0); err == nil {
			return e
		}
	}
	var names []string
	it, err := s.Fields(cue.Optional(true))
	if err == nil {
		for it.Next() {
			names = append(names, label(it.Selector()))
		}
	}
	if len(names) > 0 {
		return "a map with the fields " + strings.Join(names, ", ")
	}
	return "a map of names to values"
}

// indentation reports the slips in a YAML document's data against the
// cluster schema and marks the paths it reported as covered.
func (l *loader) indentation(u *unit) {
	l.indentStruct(u, u.data, l.def, nil)
}

func (l *loader) indentStruct(u *unit, data, schema cue.Value, sels []cue.Selector) {
	fields := dataFields(data)
	for i, f := range fields {
		path := append(append([]cue.Selector(nil), sels...), f.sel)
		s := schemaChild(schema, f.sel)
		if !s.Exists() || u.isCoveredPath(path) {
			continue
		}
		name := label(f.sel)
		if entry := schema.LookupPath(cue.MakePath(cue.AnyString)); len(sels) > 0 && entry.Exists() &&
			!explicitField(schema, name) && explicitField(entry, name) && !validAt(entry, f.v) {
			// workers: {count: 2}: a field of each entry written as an
			// entry's name.
			parent := label(sels[len(sels)-1])
			u.cover(path)
			l.diags = append(l.diags, Diagnostic{
				Pos:     l.valuePos(f.v, u.file),
				Path:    cue.MakePath(path...).String(),
				Summary: fmt.Sprintf("%q is read as a name under %s, but it is a field of each entry", name, parent),
				Detail:  fmt.Sprintf("expected %s: NAME: %s: ...; indent it below a name", parent, name),
			})
			continue
		}
		if f.v.IsNull() && expectsStruct(s) {
			pos := l.valuePos(f.v, u.file)
			u.cover(path)
			l.diags = append(l.diags, Diagnostic{
				Pos:     pos,
				Path:    cue.MakePath(path...).String(),
				Summary: "is empty",
				Detail:  fmt.Sprintf("expected %s, indented below %s:", describe(s, f.v), name),
			})
			// The lines meant for it, at its own level.
			for _, g := range fields[i+1:] {
				gname := label(g.sel)
				if !allows(s, gname, g.v) {
					break
				}
				if here := schemaChild(schema, g.sel); here.Exists() && validAt(here, g.v) {
					break // valid where it is: not a slip
				}
				gpath := append(append([]cue.Selector(nil), sels...), g.sel)
				u.cover(gpath)
				l.diags = append(l.diags, Diagnostic{
					Pos:     l.valuePos(g.v, u.file),
					Path:    cue.MakePath(gpath...).String(),
					Summary: fmt.Sprintf("belongs under %s: (line %d), which is empty", name, pos.Line),
					Detail:  fmt.Sprintf("indent it below %s:", name),
				})
			}
			continue
		}
		if f.v.IncompleteKind() == cue.StructKind && expectsStruct(s) && !u.isCoveredPath(path) {
			l.indentStruct(u, f.v, s, path)
		}
	}
}

// cover marks a path as reported.
func (u *unit) cover(sels []cue.Selector) {
	if u.covered == nil {
		u.covered = map[string]bool{}
	}
	u.covered[cue.MakePath(sels...).String()] = true
}

func (u *unit) isCoveredPath(sels []cue.Selector) bool {
	return u.covered[cue.MakePath(sels...).String()]
}
