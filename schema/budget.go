package schema

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	yamlv3 "go.yaml.in/yaml/v3"
)

// Budgets of one load. Specs come from pull requests: a small file must
// not make the loader use unbounded memory or time.
const (
	// MaxSpecFileBytes bounds one spec file.
	MaxSpecFileBytes = 1 << 20
	// MaxSpecBytes bounds all spec files of one load together.
	MaxSpecBytes = 4 << 20
	// MaxSpecFiles bounds how many spec files one load reads.
	MaxSpecFiles = 256
	// MaxExpandedYAMLBytes bounds a YAML file once its aliases are
	// expanded (the loader copies an alias's value for every use): the
	// bytes of every scalar, key and node as they would be written out.
	MaxExpandedYAMLBytes = 4 << 20
)

// checkSizes reports files over the size budgets; it returns false when
// any is.
func (l *loader) checkSizes(files []File) bool {
	ok := true
	if len(files) > MaxSpecFiles {
		l.diags = append(l.diags, Diagnostic{Pos: Pos{File: files[MaxSpecFiles].Name}, Summary: fmt.Sprintf("%d spec files: more than the %d one load reads", len(files), MaxSpecFiles),
			Detail: "split the specs across directories (--path)"})
		return false
	}
	total := 0
	for _, f := range files {
		total += len(f.Data)
		if len(f.Data) > MaxSpecFileBytes {
			l.diags = append(l.diags, Diagnostic{Pos: Pos{File: f.Name}, Summary: fmt.Sprintf("the file is %d bytes: a spec file may be at most %d", len(f.Data), MaxSpecFileBytes),
				Detail: "a cluster spec is a few kilobytes: split the file or remove what is not a spec"})
			ok = false
		}
	}
	if ok && total > MaxSpecBytes {
		l.diags = append(l.diags, Diagnostic{Pos: Pos{File: files[0].Name}, Summary: fmt.Sprintf("the spec files are %d bytes together: at most %d are read in one load", total, MaxSpecBytes),
			Detail: "split the specs across directories (--path)"})
		ok = false
	}
	return ok
}

// expandedYAML says where a YAML file grows past MaxExpandedYAMLBytes once
// its aliases are expanded, or returns "". A file that does not parse is
// left to the loader's own diagnostics.
func expandedYAML(data []byte) (line int, msg string) {
	dec := yamlv3.NewDecoder(bytes.NewReader(data))
	var total int64
	sizes := map[*yamlv3.Node]int64{}
	var size func(n *yamlv3.Node, depth int) int64
	size = func(n *yamlv3.Node, depth int) int64 {
		if n == nil || depth > 1000 {
			return MaxExpandedYAMLBytes + 1
		}
		if s, ok := sizes[n]; ok {
			return s
		}
		sizes[n] = MaxExpandedYAMLBytes + 1 // a node reached again while being sized: a cycle
		s := int64(len(n.Value) + 2)
		if n.Kind == yamlv3.AliasNode {
			s = size(n.Alias, depth+1)
		}
		for _, c := range n.Content {
			if s += size(c, depth+1); s > MaxExpandedYAMLBytes {
				break
			}
		}
		sizes[n] = s
		return s
	}
	for {
		var doc yamlv3.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return 0, ""
		}
		if err != nil {
			return 0, ""
		}
		if total += size(&doc, 0); total > MaxExpandedYAMLBytes {
			return doc.Line, fmt.Sprintf("the file grows past %d bytes once its aliases are expanded", MaxExpandedYAMLBytes)
		}
	}
}

// readAtMost reads at most n bytes of the file at p.
func readAtMost(p string, n int64) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, n))
}
