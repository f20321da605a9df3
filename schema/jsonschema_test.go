package schema

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/build"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/encoding/yaml"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// compileJSONSchema compiles the generated JSON Schema with an independent
// validator (santhosh-tekuri/jsonschema).
func compileJSONSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	js, err := JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		t.Fatalf("the generated JSON Schema is not JSON: %v", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("swarmsync.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("swarmsync.schema.json")
	if err != nil {
		t.Fatalf("the generated JSON Schema does not compile: %v", err)
	}
	return sch
}

func TestJSONSchemaIsStable(t *testing.T) {
	a, err := generateJSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	b, err := generateJSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Error("two generations of the JSON Schema differ")
	}
	for _, want := range []string{`"$schema": "https://json-schema.org/draft/2020-12/schema"`, `"default": "30s"`, `"minimum": 1`, `"additionalProperties": false`} {
		if !bytes.Contains(a, []byte(want)) {
			t.Errorf("the JSON Schema lacks %s", want)
		}
	}
}

// specDoc is one cluster document of a fixture as JSON data, or why it is
// not data (a syntax error, a key given twice).
type specDoc struct {
	file    string
	data    []byte
	notData error
}

// fixtureDocs reads every cluster document of a spec directory: each YAML
// document, and each cluster of the CUE package (its own value, before the
// schema, with its name).
func fixtureDocs(t *testing.T, dir string) []specDoc {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var docs []specDoc
	inst := build.NewContext().NewInstance(".", nil)
	var cueFiles []string
	for _, e := range entries {
		if !IsSpecFile(e.Name()) || e.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Ext(e.Name()) == ".cue" {
			cueFiles = append(cueFiles, e.Name())
			f, err := parser.ParseFile(e.Name(), data, parser.ParseComments)
			if err != nil {
				docs = append(docs, specDoc{file: e.Name(), notData: err})
				continue
			}
			_ = inst.AddSyntax(f)
			continue
		}
		dec := yaml.NewDecoder(e.Name(), bytes.NewReader(data))
		for {
			expr, err := dec.Extract()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				docs = append(docs, specDoc{file: e.Name(), notData: err})
				break
			}
			ctx, _, _, _ := compiledSchema()
			v := ctx.BuildExpr(expr)
			if v.IsNull() {
				continue
			}
			js, err := v.MarshalJSON()
			docs = append(docs, specDoc{file: e.Name(), data: js, notData: err})
		}
	}
	if len(cueFiles) > 0 && inst.Err == nil && !slices.ContainsFunc(docs, func(d specDoc) bool { return d.notData != nil }) {
		ctx, root, _, _ := compiledSchema()
		pv := ctx.BuildInstance(inst, cue.Scope(root))
		it, err := pv.LookupPath(cue.ParsePath("clusters")).Fields()
		if err != nil {
			docs = append(docs, specDoc{file: strings.Join(cueFiles, ","), notData: err})
		}
		for it != nil && it.Next() {
			v := it.Value().FillPath(cue.ParsePath("name"), it.Selector().Unquoted())
			js, err := v.MarshalJSON()
			docs = append(docs, specDoc{file: strings.Join(cueFiles, ","), data: js, notData: err})
		}
	}
	return docs
}

// jsonPath turns a diagnostic's CUE path into a JSON pointer inside its
// cluster document ("clusters.prod.managers.count" → /managers/count).
func jsonPath(p string) string {
	sels := cue.ParsePath(p).Selectors()
	if len(sels) >= 2 && label(sels[0]) == "clusters" {
		sels = sels[2:]
	}
	var b strings.Builder
	for _, s := range sels {
		b.WriteString("/" + strings.ReplaceAll(strings.ReplaceAll(label(s), "~", "~0"), "/", "~1"))
	}
	return b.String()
}

// related reports whether two JSON pointers name the same field or one
// contains the other.
func related(a, b string) bool {
	return a == b || strings.HasPrefix(a, b+"/") || strings.HasPrefix(b, a+"/") || a == "" || b == ""
}

// leafLocations lists where the validator found problems (the instance
// locations of the innermost errors).
func leafLocations(err *jsonschema.ValidationError) []string {
	if len(err.Causes) == 0 {
		var b strings.Builder
		for _, tok := range err.InstanceLocation {
			b.WriteString("/" + strings.ReplaceAll(strings.ReplaceAll(tok, "~", "~0"), "/", "~1"))
		}
		return []string{b.String()}
	}
	var out []string
	for _, c := range err.Causes {
		out = append(out, leafLocations(c)...)
	}
	return out
}

// TestJSONSchemaAgreesWithValidate checks, over every spec directory under
// fixtures/ (valid and invalid), that the generated JSON Schema and the
// loader (what `swarmsync validate` runs) reach the same verdict:
//
//   - a document that is not data (a YAML or CUE syntax error, a key given
//     twice) is rejected by the loader; the JSON Schema never sees it;
//   - otherwise the JSON Schema rejects a document exactly when the loader
//     reports a problem the schema states, and the places agree: every
//     such diagnostic's field has a JSON Schema error at it (or at a field
//     containing it), and every JSON Schema error is at a field the loader
//     reports;
//   - problems found by the loader's own rules, after the schema (cron and
//     duration syntax, exactly one provider, aws instance settings, the
//     local subnet, reserved label prefixes, group names, unique cluster
//     names), are not in the JSON Schema: a document with only those is
//     accepted by it. The test lists them.
func TestJSONSchemaAgreesWithValidate(t *testing.T) {
	sch := compileJSONSchema(t)
	var dirs []string
	err := filepath.WalkDir("../fixtures", func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return err
		}
		if slices.ContainsFunc(entries, func(e fs.DirEntry) bool { return !e.IsDir() && IsSpecFile(e.Name()) }) {
			dirs = append(dirs, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 30 {
		t.Fatalf("found only %d spec directories under fixtures/", len(dirs))
	}
	checked, rulesOnly := 0, 0
	for _, dir := range dirs {
		name, _ := filepath.Rel("../fixtures", dir)
		t.Run(filepath.ToSlash(name), func(t *testing.T) {
			_, loadErr := LoadDir(dir)
			var diags Diagnostics
			if loadErr != nil && !errors.As(loadErr, &diags) {
				t.Fatalf("LoadDir: %v", loadErr)
			}
			docs := fixtureDocs(t, dir)
			for _, d := range docs {
				if d.notData != nil {
					if loadErr == nil {
						t.Errorf("%s is not data (%v) but validate accepts the directory", d.file, d.notData)
					}
					return
				}
			}
			checked++
			var schemaPaths, allPaths, ruleMsgs []string
			for _, d := range diags {
				allPaths = append(allPaths, jsonPath(d.Path))
				if d.rule {
					ruleMsgs = append(ruleMsgs, d.String())
				} else {
					schemaPaths = append(schemaPaths, jsonPath(d.Path))
				}
			}
			var jsonLocs []string
			for _, d := range docs {
				inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(d.data))
				if err != nil {
					t.Fatalf("%s: %v", d.file, err)
				}
				err = sch.Validate(inst)
				var ve *jsonschema.ValidationError
				if errors.As(err, &ve) {
					jsonLocs = append(jsonLocs, leafLocations(ve)...)
				} else if err != nil {
					t.Fatalf("%s: %v", d.file, err)
				}
			}
			if len(schemaPaths) > 0 && len(jsonLocs) == 0 {
				t.Errorf("validate reports problems the schema states, the JSON Schema accepts every document:\n%s", diags.Error())
			}
			if len(schemaPaths) == 0 && len(jsonLocs) > 0 {
				t.Errorf("the JSON Schema rejects (at %v), validate finds no problem the schema states:\n%v", jsonLocs, loadErr)
			}
			for _, p := range schemaPaths {
				if !slices.ContainsFunc(jsonLocs, func(l string) bool { return related(l, p) }) {
					t.Errorf("validate reports %s; the JSON Schema reports nothing there (it reports %v)", p, jsonLocs)
				}
			}
			for _, l := range jsonLocs {
				if !slices.ContainsFunc(allPaths, func(p string) bool { return related(l, p) }) {
					t.Errorf("the JSON Schema reports %s; validate reports nothing there:\n%v", l, loadErr)
				}
			}
			if len(schemaPaths) == 0 && len(ruleMsgs) > 0 {
				rulesOnly++
				t.Logf("found only by the loader's rules (not in the JSON Schema):\n%s", strings.Join(ruleMsgs, "\n"))
			}
		})
	}
	t.Logf("%d spec directories compared, %d of them rejected only by the loader's rules", checked, rulesOnly)
}
