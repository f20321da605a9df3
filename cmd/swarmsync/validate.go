package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/swarmsync/swarmsync/schema"
)

// validateOptions are the flags of `swarmsync validate`.
type validateOptions struct {
	src     sourceFlags
	cluster string
	format  string
}

func init() {
	register(func(a *app) *cobra.Command {
		var o validateOptions
		cmd := &cobra.Command{
			Use:   "validate",
			Short: "Check the cluster specs and print a summary of each cluster",
			Long: `validate loads every spec file (*.yaml, *.yml, *.cue directly in the spec
directory; hidden files are skipped), checks it against the embedded schema
(see 'swarmsync schema') and prints one line per cluster. Every problem is
reported as file:line:col: field.path: message, and the exit code is 1.`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return runValidate(cmd, a, &o)
			},
		}
		o.src.register(cmd.Flags())
		cmd.Flags().StringVar(&o.cluster, "cluster", "", "validate only this cluster (the others must still be valid)")
		cmd.Flags().StringVar(&o.format, "format", "text", "output format: text or json")
		return cmd
	})
}

func runValidate(cmd *cobra.Command, a *app, o *validateOptions) error {
	if o.format != "text" && o.format != "json" {
		return fmt.Errorf("unknown --format %q: use text or json", o.format)
	}
	co, err := o.src.checkout(cmd.Context())
	if err != nil {
		return err
	}
	res, err := loadSpecs(cmd.Context(), a, co)
	if err != nil {
		return err
	}
	clusters := res.Clusters
	if o.cluster != "" {
		c, err := res.Cluster(o.cluster)
		if err != nil {
			return err
		}
		clusters = []schema.Cluster{c}
	}
	v := newValidateView(co, res, clusters)
	if o.format == "json" {
		return v.renderJSON(a.stdout)
	}
	return v.renderText(a.stdout)
}

// validateView is what `validate` shows: the source revision and a summary
// of each cluster.
type validateView struct {
	Source   validateSource   `json:"source"`
	Clusters []clusterSummary `json:"clusters"`
}

type validateSource struct {
	Repo       string   `json:"repo"`
	Ref        string   `json:"ref,omitempty"`
	Commit     string   `json:"commit,omitempty"`
	Path       string   `json:"path,omitempty"`
	SpecDigest string   `json:"spec_digest"`
	Files      []string `json:"files"`
}

type clusterSummary struct {
	Name     string         `json:"name"`
	Provider string         `json:"provider"`
	Managers int            `json:"managers"`
	Workers  []groupSummary `json:"workers"`
	Pos      string         `json:"defined_at,omitempty"`
}

type groupSummary struct {
	Group string `json:"group"`
	Count int    `json:"count"`
}

func newValidateView(co *checkout, res *schema.Result, clusters []schema.Cluster) validateView {
	v := validateView{
		Source: validateSource{
			Repo: co.Repo, Ref: co.Ref, Commit: co.Commit, Path: co.Path,
			SpecDigest: res.Digest, Files: res.Files,
		},
		Clusters: []clusterSummary{},
	}
	for _, c := range clusters {
		s := clusterSummary{Name: c.Name, Provider: c.Provider.Kind(), Managers: c.Managers.Count, Workers: []groupSummary{}, Pos: c.Pos.String()}
		names := make([]string, 0, len(c.Workers))
		for n := range c.Workers {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			s.Workers = append(s.Workers, groupSummary{Group: n, Count: c.Workers[n].Count})
		}
		v.Clusters = append(v.Clusters, s)
	}
	return v
}

func (v validateView) renderText(w io.Writer) error {
	escapeFields(&v)
	for _, c := range v.Clusters {
		workers := "no workers"
		if len(c.Workers) > 0 {
			parts := make([]string, len(c.Workers))
			for i, g := range c.Workers {
				parts[i] = fmt.Sprintf("%s=%d", g.Group, g.Count)
			}
			workers = "workers " + strings.Join(parts, " ")
		}
		managers := fmt.Sprintf("%d managers", c.Managers)
		if c.Managers == 1 {
			managers = "1 manager"
		}
		if _, err := fmt.Fprintf(w, "cluster %s: provider %s, %s, %s\n", c.Name, c.Provider, managers, workers); err != nil {
			return err
		}
	}
	if v.Source.Commit == "" {
		_, err := fmt.Fprintf(w, "revision: spec digest %s\n", v.Source.SpecDigest)
		return err
	}
	_, err := fmt.Fprintf(w, "revision %s (spec digest %s)\n", v.Source.Commit, v.Source.SpecDigest)
	return err
}

func (v validateView) renderJSON(w io.Writer) error {
	enc := json.NewEncoder(exact(w))
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// renderDiagnostics prints spec problems one per line:
// file:line:col: path: message.
func renderDiagnostics(w io.Writer, ds schema.Diagnostics) {
	for _, d := range ds {
		fmt.Fprintln(w, escapeField(d.String()))
	}
}
