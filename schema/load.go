package schema

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/build"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/encoding/yaml"
)

// File is one spec file: its name relative to the spec directory and its
// contents.
type File struct {
	Name string
	Data []byte
}

// Result is a loaded, validated spec directory.
type Result struct {
	// Clusters are the clusters defined by the files, sorted by name, with
	// every default applied.
	Clusters []Cluster
	// Files are the spec files that were read, sorted, relative to the spec
	// directory.
	Files []string
	// Digest is "sha256:<hex>" over the spec files' names and contents: the
	// plan's spec digest.
	Digest string
}

// Cluster returns the cluster with the given name, or an error listing the
// clusters that exist.
func (r *Result) Cluster(name string) (Cluster, error) {
	names := make([]string, 0, len(r.Clusters))
	for _, c := range r.Clusters {
		if c.Name == name {
			return c, nil
		}
		names = append(names, c.Name)
	}
	return Cluster{}, fmt.Errorf("cluster %q is not defined in the specs; defined clusters: %s", name, strings.Join(names, ", "))
}

// IsSpecFile reports whether a file name in a spec directory is a spec file:
// *.yaml, *.yml or *.cue, not hidden.
func IsSpecFile(name string) bool {
	if strings.HasPrefix(name, ".") {
		return false
	}
	switch filepath.Ext(name) {
	case ".yaml", ".yml", ".cue":
		return true
	}
	return false
}

// NoSpecsError is returned by LoadDir for a directory without spec files.
type NoSpecsError struct {
	// Dir is the directory read; callers that read a copy (a checkout)
	// should say where it came from instead.
	Dir string
	// SubDirs are its sub-directories (names, sorted) that hold spec
	// files: the specs the caller probably meant.
	SubDirs []string
}

func (e *NoSpecsError) Error() string {
	return fmt.Sprintf("no cluster specs found in %s: add a .yaml or .cue file", e.Dir)
}

// specSubDirs lists the sub-directories of dir that hold spec files.
func specSubDirs(dir string, entries []os.DirEntry) []string {
	var subs []string
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		inner, err := os.ReadDir(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		if slices.ContainsFunc(inner, func(f os.DirEntry) bool { return !f.IsDir() && IsSpecFile(f.Name()) }) {
			subs = append(subs, e.Name())
		}
	}
	return subs
}

// LoadDir loads every spec file directly in dir (*.yaml, *.yml and *.cue;
// hidden files and sub-directories are skipped). Problems with the specs
// are returned as Diagnostics, every one of them at once.
func LoadDir(dir string) (*Result, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("failed to read spec directory: %w", err)
	}
	var files []File
	for _, e := range entries {
		if !IsSpecFile(e.Name()) {
			continue
		}
		if len(files) == MaxSpecFiles {
			return nil, Diagnostics{{Pos: Pos{File: e.Name()}, Summary: fmt.Sprintf("more than %d spec files", MaxSpecFiles),
				Detail: "split the specs across directories (--path)"}}
		}
		p := filepath.Join(dir, e.Name())
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("failed to read spec file: %w", err)
		}
		if !st.Mode().IsRegular() {
			continue
		}
		if st.Size() > MaxSpecFileBytes {
			return nil, Diagnostics{{Pos: Pos{File: e.Name()}, Summary: fmt.Sprintf("the file is %d bytes: a spec file may be at most %d", st.Size(), MaxSpecFileBytes),
				Detail: "a cluster spec is a few kilobytes: split the file or remove what is not a spec"}}
		}
		data, err := readAtMost(p, MaxSpecFileBytes+1) // one byte more: Load says it is too large
		if err != nil {
			return nil, fmt.Errorf("failed to read spec file: %w", err)
		}
		files = append(files, File{Name: e.Name(), Data: data})
	}
	if len(files) == 0 {
		return nil, &NoSpecsError{Dir: dir, SubDirs: specSubDirs(dir, entries)}
	}
	return Load(files)
}

// Load loads and validates the given spec files. YAML files hold one
// cluster per document; the CUE files together form one package that
// declares its clusters under `clusters` (see schema.cue). Problems with the
// specs are returned as Diagnostics.
func Load(files []File) (*Result, error) {
	mu.Lock()
	defer mu.Unlock()
	ctx, root, def, err := compiledSchema()
	if err != nil {
		return nil, err
	}
	files = slices.Clone(files)
	slices.SortFunc(files, func(a, b File) int { return cmp.Compare(a.Name, b.Name) })

	l := &loader{ctx: ctx, root: root, def: def}
	if !l.checkSizes(files) {
		return nil, l.diags.sort()
	}
	res := &Result{Digest: digest(files)}
	var cueFiles []File
	for _, f := range files {
		res.Files = append(res.Files, f.Name)
		switch filepath.Ext(f.Name) {
		case ".yaml", ".yml":
			l.loadYAML(f)
		case ".cue":
			cueFiles = append(cueFiles, f)
		default:
			l.diags = append(l.diags, Diagnostic{Pos: Pos{File: f.Name}, Summary: "not a spec file", Detail: "spec files end in .yaml, .yml or .cue"})
		}
	}
	if len(cueFiles) > 0 {
		l.loadCUE(cueFiles)
	}
	l.checkDuplicates()
	if len(l.diags) > 0 {
		return nil, l.diags.sort()
	}
	if len(l.clusters) == 0 {
		return nil, fmt.Errorf("no clusters defined in %s: a YAML document or a CUE `clusters: NAME: {...}` entry defines one", strings.Join(res.Files, ", "))
	}
	slices.SortFunc(l.clusters, func(a, b Cluster) int { return cmp.Compare(a.Name, b.Name) })
	res.Clusters = l.clusters
	return res, nil
}

// digest hashes the files' names and contents (files sorted by name).
func digest(files []File) string {
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%s\x00%d\x00", f.Name, len(f.Data))
		h.Write(f.Data)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// loader collects the clusters and diagnostics of one Load.
type loader struct {
	ctx       *cue.Context
	root, def cue.Value
	diags     Diagnostics
	clusters  []Cluster
}

// unit is one evaluated value (a YAML document unified with #Cluster, or the
// CUE package unified with the schema) with what is needed to turn its
// errors into diagnostics.
type unit struct {
	// value is the unified value; lookups of attributes happen here.
	value cue.Value
	// data is the spec's own value, before the schema; its positions point
	// into spec files.
	data cue.Value
	// strip is how many leading elements of an error path are not part of
	// the user's path (the "#Cluster" of a YAML document).
	strip int
	// file is the file of a YAML document, the fallback position.
	file string
	// inCluster is how many leading path elements lead to a cluster (0 for
	// YAML, 2 for clusters.NAME in CUE).
	inCluster int
	// packagePhase is set while the CUE package's own errors are
	// converted: their positions are where the spec went wrong.
	packagePhase bool
	// declared is where each CUE cluster is declared, by name.
	declared map[string]Pos
	// covered are the paths that already have a diagnostic from the CUE
	// package itself.
	covered map[string]bool
}

var yamlLineErr = regexp.MustCompile(`^(.*?):(\d+): (.*)$`)

func (l *loader) loadYAML(f File) {
	if line, msg := expandedYAML(f.Data); msg != "" {
		l.diags = append(l.diags, Diagnostic{Pos: Pos{File: f.Name, Line: line, Col: 1}, Summary: msg,
			Detail: "a cluster spec is a few kilobytes: use fewer or smaller aliases"})
		return
	}
	dec := yaml.NewDecoder(f.Name, bytes.NewReader(f.Data))
	for {
		expr, err := extractYAML(dec)
		var crash *decoderPanic
		if errors.As(err, &crash) {
			l.diags = append(l.diags, Diagnostic{Pos: Pos{File: f.Name}, Summary: "YAML the decoder cannot read",
				Detail: fmt.Sprintf("it failed on this file (%v); write plain YAML with LF line breaks", crash.value)})
			return
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			l.yamlSyntaxError(f.Name, f.Data, err)
			return
		}
		l.yamlDocument(f.Name, expr)
	}
}

// decoderPanic is a panic of the YAML decoder on some input (seen with
// bare carriage returns), turned into an error.
type decoderPanic struct{ value any }

func (d *decoderPanic) Error() string { return fmt.Sprintf("YAML decoder panic: %v", d.value) }

// extractYAML is dec.Extract with a panic of the decoder turned into an
// error: a spec must not crash the process.
func extractYAML(dec *yaml.Decoder) (expr ast.Expr, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &decoderPanic{value: r}
		}
	}()
	return dec.Extract()
}

func (l *loader) yamlSyntaxError(file string, data []byte, err error) {
	if ce := cueerrors.Errors(err); len(ce) > 0 && ce[0].Position().IsValid() {
		for _, e := range ce {
			l.diags = append(l.diags, Diagnostic{Pos: l.filePos(e.Position(), file), Summary: "YAML syntax error: " + message(e)})
		}
		return
	}
	d := Diagnostic{Pos: Pos{File: file}, Summary: "YAML syntax error: " + err.Error()}
	if m := yamlLineErr.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[2])
		d.Pos = Pos{File: file, Line: line, Col: 1}
		d.Summary = "YAML syntax error: " + m[3]
		if mark, ok := yamlLocate(data, line, m[3]); ok {
			d.Pos.Line, d.Pos.Col, d.Detail = mark.line, mark.col, mark.what
		} else if ls := yamlLines(data); line >= 1 && line <= len(ls) && !ls[line-1].blank {
			d.Pos.Col = ls[line-1].indent + 1
		}
	}
	l.diags = append(l.diags, d)
}

func (l *loader) yamlDocument(file string, expr ast.Expr) {
	dv := l.ctx.BuildExpr(expr)
	if d, _ := dv.Default(); d.IsNull() {
		return // an empty document
	}
	if _, ok := expr.(*ast.StructLit); !ok {
		l.diags = append(l.diags, Diagnostic{
			Pos:     l.filePos(expr.Pos(), file),
			Summary: "a YAML document must be a mapping",
			Detail:  "each document describes one cluster (name, provider, managers, ...)",
		})
		return
	}
	if err := dv.Validate(cue.All()); err != nil {
		// The document contradicts itself (a key given twice).
		u := &unit{value: dv, data: dv, file: file}
		l.addErrors(u, cueerrors.Errors(err))
		return
	}
	u := &unit{value: l.def.Unify(dv), data: dv, strip: len(l.def.Path().Selectors()), file: file}
	l.indentation(u)
	l.cluster(u, u.value, nil, l.filePos(expr.Pos(), file))
}

func (l *loader) loadCUE(files []File) {
	inst := build.NewContext().NewInstance(".", nil)
	declared := map[string]Pos{}
	broken := false
	for _, f := range files {
		af, err := parser.ParseFile(f.Name, f.Data, parser.ParseComments)
		if err != nil {
			for _, e := range cueerrors.Errors(err) {
				l.diags = append(l.diags, Diagnostic{Pos: l.filePos(e.Position(), f.Name), Summary: "CUE syntax error: " + message(e)})
			}
			broken = true
			continue
		}
		for imp := range af.ImportSpecs() {
			if p, err := strconv.Unquote(imp.Path.Value); err == nil && strings.Contains(strings.SplitN(p, "/", 2)[0], ".") {
				l.diags = append(l.diags, Diagnostic{Pos: l.filePos(imp.Pos(), f.Name), Summary: fmt.Sprintf("import %q is not supported", p), Detail: "spec files may import only CUE's standard library", rule: true})
				broken = true
			}
		}
		declaredClusters(af, declared, l)
		_ = inst.AddSyntax(af) // its errors are collected in inst.Err
	}
	if inst.Err != nil {
		l.addErrors(&unit{}, cueerrors.Errors(inst.Err))
		return
	}
	// The package is evaluated only when every file of it could be read:
	// without one of its files, the others would report false problems.
	if broken {
		return
	}
	pv := l.ctx.BuildInstance(inst, cue.Scope(l.root))
	u := &unit{value: pv.Unify(l.root), data: pv, inCluster: 2, covered: map[string]bool{}, declared: declared}
	if !pv.Exists() {
		l.addErrors(u, cueerrors.Errors(pv.Err()))
		return
	}
	// Errors in the package itself (unresolved references, conflicts
	// between shared defaults and a cluster) come first; the schema's
	// errors for the same fields are then redundant.
	before := len(l.diags)
	u.packagePhase = true
	l.addErrors(u, cueerrors.Errors(pv.Validate(cue.All())))
	u.packagePhase = false
	for _, d := range l.diags[before:] {
		u.covered[d.Path] = true
	}

	// Only `clusters` may appear at the top level.
	it, err := pv.Fields()
	if err != nil {
		l.addErrors(u, cueerrors.Errors(err))
		return
	}
	for it.Next() {
		sel := it.Selector()
		if label(sel) == "clusters" {
			continue
		}
		d := Diagnostic{
			Pos:     l.valuePos(it.Value(), ""),
			Path:    cue.MakePath(sel).String(),
			Summary: "field not allowed at the top level",
			Detail:  "a CUE spec declares its clusters under clusters: NAME: {...}; use _hidden fields or #Definitions for helpers",
			rule:    true,
		}
		if s := suggest(label(sel), []string{"clusters"}); s != "" {
			d.Detail = fmt.Sprintf("did you mean %s?", s)
		}
		l.diags = append(l.diags, d)
	}

	clusters := u.value.LookupPath(cue.MakePath(cue.Str("clusters")))
	if !clusters.Exists() {
		return
	}
	cit, err := clusters.Fields()
	if err != nil {
		l.addErrors(u, cueerrors.Errors(err))
		return
	}
	for cit.Next() {
		prefix := []cue.Selector{cue.Str("clusters"), cit.Selector()}
		l.cluster(u, cit.Value(), prefix, u.posOf(prefix, l))
	}
}

// cluster validates one cluster value (at prefix in u) and, when it is
// valid, decodes it.
func (l *loader) cluster(u *unit, v cue.Value, prefix []cue.Selector, pos Pos) {
	c := &check{l: l, u: u, v: v, prefix: prefix, covered: map[string]bool{}}
	own := cue.MakePath(prefix...).String()
	bad := false
	for p := range u.covered {
		if len(prefix) == 0 || p == own || strings.HasPrefix(p, own+".") {
			c.covered[p], bad = true, true
		}
	}
	var errs []cueerrors.Error
	for _, e := range validateAll(v, 3) {
		sels := u.selectors(e.Path()[min(u.strip, len(e.Path())):])
		if len(sels) < len(prefix) || c.isCovered(sels) {
			continue // outside this cluster, or already reported
		}
		errs = append(errs, e)
	}
	before := len(l.diags)
	l.addErrors(u, errs)
	for _, d := range l.diags[before:] {
		c.covered[d.Path] = true
	}
	c.rules()
	if bad || len(l.diags) > before {
		return
	}
	var cl Cluster
	if err := v.Decode(&cl); err != nil {
		l.diags = append(l.diags, Diagnostic{Pos: pos, Path: cue.MakePath(prefix...).String(), Summary: "failed to decode the cluster: " + err.Error()})
		return
	}
	cl.Pos = pos
	l.clusters = append(l.clusters, cl)
}

// validateAll returns every error in v. CUE reports missing required fields
// only when nothing else is wrong, so when v has errors its fields are
// validated one by one as well (down to depth levels).
func validateAll(v cue.Value, depth int) []cueerrors.Error {
	err := v.Validate(cue.Concrete(true), cue.All())
	if err == nil {
		return nil
	}
	errs := cueerrors.Errors(err)
	if depth == 0 {
		return errs
	}
	it, ierr := v.Fields(cue.Optional(true))
	if ierr != nil {
		return errs
	}
	for it.Next() {
		if it.IsOptional() {
			continue // an absent optional field is not an error
		}
		errs = append(errs, validateAll(it.Value(), depth-1)...)
	}
	return errs
}

func (l *loader) checkDuplicates() {
	first := map[string]Pos{}
	for _, c := range l.clusters {
		p, ok := first[c.Name]
		if !ok {
			first[c.Name] = c.Pos
			continue
		}
		l.diags = append(l.diags, Diagnostic{
			Pos:     c.Pos,
			Path:    "name",
			Summary: fmt.Sprintf("cluster %q is defined more than once", c.Name),
			Detail:  fmt.Sprintf("it is also defined at %s; cluster names must be unique across spec files", p),
			rule:    true,
		})
	}
}

// declaredClusters records where each cluster is first declared in a CUE
// file (`clusters: NAME: ...` or `clusters: {NAME: ...}`), so that a
// cluster's position is its own declaration, not a shared default.
func declaredClusters(f *ast.File, into map[string]Pos, l *loader) {
	for _, d := range f.Decls {
		fd, ok := d.(*ast.Field)
		if !ok {
			continue
		}
		if name, _, err := ast.LabelName(fd.Label); err != nil || name != "clusters" {
			continue
		}
		st, ok := fd.Value.(*ast.StructLit)
		if !ok {
			continue
		}
		for _, e := range st.Elts {
			cf, ok := e.(*ast.Field)
			if !ok {
				continue
			}
			name, isIdent, err := ast.LabelName(cf.Label)
			if err != nil || !isIdent && name == "" {
				continue
			}
			if _, seen := into[name]; !seen {
				into[name] = l.filePos(cf.Label.Pos(), f.Filename)
			}
		}
	}
}
