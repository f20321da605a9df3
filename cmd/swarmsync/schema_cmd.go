package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/swarmsync/swarmsync/schema"
)

// schemaFormats are the formats `swarmsync schema` prints.
var schemaFormats = []string{"cue", "jsonschema"}

func init() {
	register(func(a *app) *cobra.Command {
		var format string
		cmd := &cobra.Command{
			Use:   "schema",
			Short: "Print the schema of cluster specs (CUE, or JSON Schema for editors)",
			Long: `schema prints the embedded CUE schema: every field of a cluster spec with
its type, range and default. It is the single source of truth for specs.

--format jsonschema prints a JSON Schema (draft 2020-12) of one cluster
document, generated from that CUE schema, for editors: save it next to the
specs and point the YAML language server at it with a first line

  # yaml-language-server: $schema=./swarmsync.schema.json

(or the yaml.schemas setting of your editor). The editor then checks fields,
types, ranges and required fields as you type, completes field names and
shows each field's documentation and default. 'swarmsync validate' checks
more: cron and duration syntax, exactly one provider, instance settings on
aws, the local subnet, reserved label prefixes and group names.`,
			Example: `  swarmsync schema
  swarmsync schema --format jsonschema > swarmsync.schema.json`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				switch format {
				case "cue":
					return renderSchema(a.stdout, []byte(schema.Source()))
				case "jsonschema":
					js, err := schema.JSONSchema()
					if err != nil {
						return err
					}
					return renderSchema(a.stdout, js)
				}
				return fmt.Errorf("unknown --format %q: use cue or jsonschema", format)
			},
		}
		cmd.Flags().StringVar(&format, "format", "cue", "output format: cue (the schema itself) or jsonschema (generated from it, for editors)")
		return cmd
	})
}

// renderSchema prints the schema text.
func renderSchema(w io.Writer, src []byte) error {
	_, err := w.Write(src)
	return err
}
