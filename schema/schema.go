package schema

import (
	_ "embed"
	"fmt"
	"sync"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
)

//go:embed schema.cue
var schemaSource string

// schemaFile is the name under which the embedded schema is compiled. It is
// not a valid file name in a spec directory, so positions inside the schema
// are never confused with positions in a spec.
const schemaFile = "<swarmsync>/schema.cue"

// Source returns the text of the embedded CUE schema.
func Source() string { return schemaSource }

// compiled is the schema compiled once per process. CUE values are not safe
// for concurrent use, so every use holds mu.
var (
	compileOnce sync.Once
	compiled    struct {
		ctx     *cue.Context
		root    cue.Value // the whole schema file
		cluster cue.Value // #Cluster
		err     error
	}
	mu sync.Mutex
)

func compiledSchema() (*cue.Context, cue.Value, cue.Value, error) {
	compileOnce.Do(func() {
		ctx := cuecontext.New()
		root := ctx.CompileString(schemaSource, cue.Filename(schemaFile))
		if err := root.Err(); err != nil {
			compiled.err = fmt.Errorf("failed to compile the embedded schema: %w", err)
			return
		}
		compiled.ctx = ctx
		compiled.root = root
		compiled.cluster = root.LookupPath(cue.MakePath(cue.Def("Cluster")))
	})
	return compiled.ctx, compiled.root, compiled.cluster, compiled.err
}
