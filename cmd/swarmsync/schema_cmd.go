package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/swarmsync/swarmsync/schema"
)

func init() {
	register(func(a *app) *cobra.Command {
		return &cobra.Command{
			Use:   "schema",
			Short: "Print the CUE schema of cluster specs",
			Long: `schema prints the embedded CUE schema: every field of a cluster spec with
its type, range and default. It is the single source of truth for specs.`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return renderSchema(a.stdout, schema.Source())
			},
		}
	})
}

// renderSchema prints the schema text.
func renderSchema(w io.Writer, src string) error {
	_, err := io.WriteString(w, src)
	return err
}
