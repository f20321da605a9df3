package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/ast/astutil"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/token"
	"cuelang.org/go/encoding/jsonschema"
)

// JSONSchema returns a JSON Schema (draft 2020-12) of one cluster spec
// document (a YAML document, or its JSON form), generated from the
// embedded CUE schema's #Cluster. It is what editors' YAML language
// servers use to check and complete specs as they are typed.
//
// It checks everything schema.cue states: fields and their types, closed
// structs, required fields, ranges, enums, patterns and lengths, and it
// carries each field's documentation, what it expects and its default. It
// does not check the rules the loader applies after the schema (see the
// header of schema.cue: cron and duration syntax, exactly one provider,
// instance settings required on aws, the local subnet, reserved label
// prefixes, group names, unique cluster names); `swarmsync validate` does.
func JSONSchema() ([]byte, error) {
	jsonSchemaOnce.Do(func() { jsonSchemaOut, jsonSchemaErr = generateJSONSchema() })
	return bytes.Clone(jsonSchemaOut), jsonSchemaErr
}

var (
	jsonSchemaOnce sync.Once
	jsonSchemaOut  []byte
	jsonSchemaErr  error
)

func generateJSONSchema() ([]byte, error) {
	mu.Lock()
	defer mu.Unlock()
	ctx, root, _, err := compiledSchema()
	if err != nil {
		return nil, err
	}
	// CUE's generator loses the bounds of a disjunction whose default the
	// other disjunct subsumes (*1 | int & >=1 comes out as a bare
	// integer), so it is given the schema without defaults, each defaulted
	// field made optional (a default means it may be left out). The
	// defaults are added back below as "default" annotations.
	f, err := parser.ParseFile(schemaFile, schemaSource, parser.ParseComments)
	if err != nil {
		return nil, fmt.Errorf("failed to parse the embedded schema: %w", err)
	}
	defaulted := stripDefaults(f)
	plain := ctx.BuildFile(f)
	if err := plain.Err(); err != nil {
		return nil, fmt.Errorf("failed to compile the schema without defaults: %w", err)
	}
	defs := map[string]cue.Path{}
	expr, err := jsonschema.Generate(plain.LookupPath(cue.MakePath(cue.Def("Cluster"))), &jsonschema.GenerateConfig{
		NamesFunc: func(refs []*jsonschema.CUERef) {
			for _, r := range refs {
				var parts []string
				for _, s := range r.Path.Selectors() {
					parts = append(parts, strings.TrimPrefix(s.String(), "#"))
				}
				r.Name = strings.Join(parts, ".")
				defs[r.Name] = r.Path
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("failed to generate the JSON Schema: %w", err)
	}
	raw, err := ctx.BuildExpr(expr).MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("failed to encode the JSON Schema: %w", err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("failed to decode the generated JSON Schema: %w", err)
	}
	a := annotator{defaulted: defaulted}
	a.annotate(doc, root.LookupPath(cue.MakePath(cue.Def("Cluster"))), "#Cluster")
	if ds, ok := doc["$defs"].(map[string]any); ok {
		for name, node := range ds {
			if n, ok := node.(map[string]any); ok {
				a.annotate(n, root.LookupPath(defs[name]), defs[name].String())
			}
		}
	}
	doc["title"] = "swarmsync cluster spec"
	doc["description"] = "One swarmsync cluster (one YAML document). Generated from the embedded CUE schema by `swarmsync schema --format jsonschema`; `swarmsync validate` also checks cron and duration syntax, exactly one provider, instance settings on aws, the local subnet, reserved label prefixes and group names."
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("failed to encode the JSON Schema: %w", err)
	}
	return b.Bytes(), nil
}

// stripDefaults removes every default marker (*x in a disjunction) from f
// and makes the fields that had one optional. It returns the paths of those
// fields ("#Update.delay").
func stripDefaults(f *ast.File) map[string]bool {
	defaulted := map[string]bool{}
	var walk func(decls []ast.Decl, prefix string)
	walk = func(decls []ast.Decl, prefix string) {
		for _, d := range decls {
			fd, ok := d.(*ast.Field)
			if !ok {
				continue
			}
			name, _, err := ast.LabelName(fd.Label)
			if err != nil {
				continue
			}
			path := prefix + name
			if hasDefault(fd.Value) {
				defaulted[path] = true
				if fd.Constraint == token.ILLEGAL {
					fd.Constraint = token.OPTION
				}
			}
			ast.Walk(fd.Value, func(n ast.Node) bool {
				if st, ok := n.(*ast.StructLit); ok {
					walk(st.Elts, path+".")
					return false
				}
				return true
			}, nil)
		}
	}
	walk(f.Decls, "")
	astutil.Apply(f, func(c astutil.Cursor) bool {
		if n, ok := c.Node().(*ast.UnaryExpr); ok && n.Op == token.MUL {
			c.Replace(n.X)
		}
		return true
	}, nil)
	return defaulted
}

// hasDefault reports whether a field value is a disjunction with a
// default marker at its top level.
func hasDefault(e ast.Expr) bool {
	switch x := e.(type) {
	case *ast.BinaryExpr:
		return x.Op == token.OR && (hasDefault(x.X) || hasDefault(x.Y))
	case *ast.UnaryExpr:
		return x.Op == token.MUL
	case *ast.ParenExpr:
		return hasDefault(x.X)
	}
	return false
}

// annotator adds to a generated schema what the CUE schema says about each
// field beyond its constraints: its default and what it expects.
type annotator struct {
	// defaulted are the paths of fields with a default ("#Update.delay").
	defaulted map[string]bool
}

// annotate annotates the properties of node, the schema generated for the
// CUE value v at path.
func (a annotator) annotate(node map[string]any, v cue.Value, path string) {
	for _, k := range []string{"allOf", "anyOf", "oneOf"} {
		if list, ok := node[k].([]any); ok {
			for _, e := range list {
				if n, ok := e.(map[string]any); ok {
					a.annotate(n, v, path)
				}
			}
		}
	}
	props, ok := node["properties"].(map[string]any)
	if !ok {
		return
	}
	for name, p := range props {
		pn, ok := p.(map[string]any)
		if !ok {
			continue
		}
		fv := schemaChild(v, cue.Str(name))
		if !fv.Exists() {
			continue
		}
		if d, ok := fv.Default(); ok && a.defaulted[path+"."+name] {
			if js, err := d.MarshalJSON(); err == nil {
				var x any
				if json.Unmarshal(js, &x) == nil {
					pn["default"] = x
				}
			}
		}
		attr := fv.Attribute("expect")
		if s, err := attr.String(0); err == nil && s != "" {
			desc, _ := pn["description"].(string)
			if desc != "" {
				desc += "\n\n"
			}
			pn["description"] = desc + "Expected: " + s + "."
		}
		a.annotate(pn, fv, path+"."+name)
	}
}
