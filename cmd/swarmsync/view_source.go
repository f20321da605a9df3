package main

import (
	"fmt"
	"io"
	"strings"
)

// renderUncommitted warns that a work tree's edits are not what is read:
// the specs come from its committed HEAD.
func renderUncommitted(w io.Writer, co *checkout) {
	if len(co.Uncommitted) == 0 {
		return
	}
	where := ""
	if co.Path != "" {
		where = " under " + co.Path
	}
	fmt.Fprintf(w, "Warning: %s has uncommitted changes%s; using its committed HEAD (%s), without them:\n",
		co.Repo, where, shortCommit(co.Commit))
	for _, f := range co.Uncommitted {
		fmt.Fprintf(w, "  %s\n", f)
	}
	fmt.Fprintln(w, "Commit them (or stash them) to use them.")
}

// noSpecsMessage says that the source holds no spec files, in the user's
// terms (never the path of the cache the revision was written to), and
// which --path to pass when a sub-directory holds some.
func noSpecsMessage(co *checkout, subDirs []string) string {
	where := co.Repo
	if co.Path != "" {
		where = fmt.Sprintf("%s of %s", co.Path, co.Repo)
	}
	if !strings.HasPrefix(co.Commit, "dir:") {
		where += fmt.Sprintf(" (commit %s)", shortCommit(co.Commit))
	}
	msg := fmt.Sprintf("no cluster specs (*.yaml, *.yml, *.cue) directly in %s", where)
	if len(subDirs) == 0 {
		return msg + ": add a spec file (swarmsync init writes one), or name the directory that holds them with --path"
	}
	var paths []string
	for _, s := range subDirs {
		p := s
		if co.Path != "" {
			p = co.Path + "/" + s
		}
		paths = append(paths, "--path "+p)
	}
	return msg + "; specs in a sub-directory need --path: pass " + strings.Join(paths, " or ")
}
