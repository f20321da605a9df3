package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/swarmsync/swarmsync/schema"
	gitsync "github.com/swarmsync/swarmsync/sync"
)

// flagValues are the values of flags whose set is known, by command and
// flag name ("" as command: any command): the shell completes them.
var flagValues = map[string]map[string][]string{
	"validate": {"format": {"text", "json"}},
	"plan":     {"format": planFormats},
	"apply":    {"format": {"text", "json"}},
	"status":   {"format": {"text", "json"}},
	"schema":   {"format": schemaFormats},
	"init":     {"provider": initProviders},
}

// fileFlags are flags that name files (completed with these extensions;
// none: any file) or directories.
var (
	jsonFileFlags = []string{"observed", "out"}
	dirFlags      = []string{"repo", "path", "cache-dir"}
)

// registerCompletions teaches the shell what each command's flags and
// arguments take: the known values of enumerated flags, cluster names from
// the specs (--cluster), directories and JSON files; commands without
// arguments complete no file names.
func registerCompletions(root *cobra.Command) {
	for _, cmd := range root.Commands() {
		if cmd.ValidArgsFunction == nil {
			switch cmd.Name() {
			case "apply":
				cmd.ValidArgsFunction = fileArgs("json")
			case "init":
				cmd.ValidArgsFunction = dirArgs
			case "man":
				cmd.ValidArgsFunction = dirArgs
			case "completion", "help":
			default:
				cmd.ValidArgsFunction = cobra.NoFileCompletions
			}
		}
		for name, values := range flagValues[cmd.Name()] {
			_ = cmd.RegisterFlagCompletionFunc(name, cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp))
		}
		if cmd.Flags().Lookup("cluster") != nil {
			_ = cmd.RegisterFlagCompletionFunc("cluster", completeClusters)
		}
		for _, name := range jsonFileFlags {
			if cmd.Flags().Lookup(name) != nil {
				_ = cmd.RegisterFlagCompletionFunc(name, fileArgs("json"))
			}
		}
		for _, name := range dirFlags {
			if cmd.Flags().Lookup(name) != nil {
				_ = cmd.RegisterFlagCompletionFunc(name, dirArgs)
			}
		}
	}
}

func fileArgs(ext string) cobra.CompletionFunc {
	return func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return []cobra.Completion{ext}, cobra.ShellCompDirectiveFilterFileExt
	}
}

func dirArgs(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return nil, cobra.ShellCompDirectiveFilterDirs
}

// completeClusters lists the clusters the specs define, read from the
// source the command line names so far (--repo, --ref, --path). Only local
// sources are read: completion never reaches the network.
func completeClusters(cmd *cobra.Command, _ []string, prefix string) ([]cobra.Completion, cobra.ShellCompDirective) {
	flag := func(name string) string {
		if f := cmd.Flags().Lookup(name); f != nil {
			return f.Value.String()
		}
		return ""
	}
	repo := flag("repo")
	if !gitsync.IsLocal(repo) {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	src := sourceFlags{Repo: repo, Ref: flag("ref"), Path: flag("path"), CacheDir: flag("cache-dir")}
	co, err := src.checkout(cmd.Context())
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	if evaluateWithinBudget(ctx, co.Dir) != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	res, err := schema.LoadDir(co.Dir)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var names []cobra.Completion
	for _, c := range res.Clusters {
		if strings.HasPrefix(c.Name, prefix) {
			names = append(names, cobra.CompletionWithDesc(c.Name, fmt.Sprintf("%s, %s", c.Provider.Kind(), c.Pos)))
		}
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}

func init() {
	register(func(a *app) *cobra.Command {
		return &cobra.Command{
			Use:   "man DIR",
			Short: "Write the manual pages (section 1) into DIR",
			Long: `man writes one manual page per command (swarmsync.1, swarmsync-plan.1, ...)
into DIR, creating it when needed, e.g. for man(1) to find:

  swarmsync man /usr/local/share/man/man1 && man swarmsync-plan

The pages are generated from the same help text as --help.`,
			Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				dir := args[0]
				if err := os.MkdirAll(dir, 0o755); err != nil {
					return fmt.Errorf("failed to create %s: %w", dir, err)
				}
				header := &doc.GenManHeader{Section: "1", Source: "swarmsync " + version, Manual: "swarmsync manual"}
				if err := doc.GenManTreeFromOpts(cmd.Root(), doc.GenManTreeOptions{Path: dir, CommandSeparator: "-", Header: header}); err != nil {
					return fmt.Errorf("failed to write manual pages into %s: %w", dir, err)
				}
				return renderManDone(a.stdout, cmd.Root(), dir)
			},
		}
	})
}

// renderManDone says which pages were written.
func renderManDone(w io.Writer, root *cobra.Command, dir string) error {
	var count func(c *cobra.Command) int
	count = func(c *cobra.Command) int {
		n := 1
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() && !sub.IsAdditionalHelpTopicCommand() {
				n += count(sub)
			}
		}
		return n
	}
	n := count(root)
	_, err := fmt.Fprintf(w, "Wrote %d manual pages into %s (man swarmsync, man swarmsync-plan, ...).\n", n, dir)
	return err
}
