package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/swarmsync/swarmsync/schema"
)

// initOptions are the flags of `swarmsync init`.
type initOptions struct {
	dir      string
	provider string
	name     string
	managers int
	workers  int
	group    string
	// local
	subnet string
	// aws
	region          string
	subnets         []string
	image           string
	managerType     string
	workerType      string
	securityGroups  []string
	instanceProfile string
	keyName         string

	editorSchema bool
}

// initProviders are the providers init can write a spec for.
var initProviders = []string{"local", "aws"}

// schemaFileName is the editor's JSON Schema that init writes beside the spec.
const schemaFileName = "swarmsync.schema.json"

func init() {
	register(func(a *app) *cobra.Command {
		var o initOptions
		cmd := &cobra.Command{
			Use:   "init [DIR]",
			Short: "Write a commented, valid starting spec",
			Long: `init writes DIR/NAME.yaml (DIR defaults to the current directory, NAME to
the cluster name): a commented cluster spec that validates, with every
setting spelt out at its default, and swarmsync.schema.json beside it so that
editors check and complete the spec (see 'swarmsync schema').

It never overwrites a file: when one of them exists (with other content) it
stops and writes nothing. The spec is checked against the schema before
anything is written.

--provider local (the default) puts every machine on this host (a dockerd in
its own network namespace); --provider aws needs --region, --image and
--subnets, the machine image and the subnets (one per availability zone)
every group launches into.`,
			Example: `  swarmsync init specs
  swarmsync init --name staging --managers 1 --workers 3
  swarmsync init --provider aws --name prod --region eu-west-1 \
      --image ami-0123456789abcdef0 --subnets subnet-0a1,subnet-0b2,subnet-0c3`,
			Args: cobra.MaximumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				o.dir = "."
				if len(args) == 1 {
					o.dir = args[0]
				}
				return runInit(a, &o)
			},
		}
		f := cmd.Flags()
		f.StringVar(&o.provider, "provider", "local", "where the machines run: local (this host) or aws")
		f.StringVar(&o.name, "name", "demo", "cluster name (a DNS label); the spec file is NAME.yaml")
		f.IntVar(&o.managers, "managers", 3, "number of managers: 1, 3, 5 or 7")
		f.IntVar(&o.workers, "workers", 2, "number of workers in the first worker group")
		f.StringVar(&o.group, "group", "general", "name of the first worker group (a DNS label)")
		f.StringVar(&o.subnet, "subnet", "", "local: the host bridge's IPv4 network, /16 to /28 (default: the schema's, 10.231.0.0/24)")
		f.StringVar(&o.region, "region", "", "aws: the EC2 region, e.g. eu-west-1")
		f.StringSliceVar(&o.subnets, "subnets", nil, "aws: subnet ids, comma-separated, one per availability zone")
		f.StringVar(&o.image, "image", "", "aws: the machine image (AMI) id of every group")
		f.StringVar(&o.managerType, "manager-type", "t3.medium", "aws: the managers' instance type")
		f.StringVar(&o.workerType, "worker-type", "t3.large", "aws: the workers' instance type")
		f.StringSliceVar(&o.securityGroups, "security-groups", nil, "aws: security group ids, comma-separated (optional)")
		f.StringVar(&o.instanceProfile, "instance-profile", "", "aws: IAM instance profile name (optional)")
		f.StringVar(&o.keyName, "key-name", "", "aws: EC2 key pair name (optional)")
		f.BoolVar(&o.editorSchema, "editor-schema", true, "also write "+schemaFileName+" (the JSON Schema editors use)")
		return cmd
	})
}

func runInit(a *app, o *initOptions) error {
	if err := o.check(); err != nil {
		return err
	}
	spec, err := renderInitSpec(o)
	if err != nil {
		return err
	}
	specName := o.name + ".yaml"
	files := []initFile{{name: specName, data: spec}}
	if o.editorSchema {
		js, err := schema.JSONSchema()
		if err != nil {
			return err
		}
		files = append(files, initFile{name: schemaFileName, data: js, sameIsFine: true})
	}
	// Check every file before writing any, so a refusal writes nothing.
	for i := range files {
		p := filepath.Join(o.dir, files[i].name)
		old, err := os.ReadFile(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return fmt.Errorf("failed to read %s: %w", p, err)
		case files[i].sameIsFine && string(old) == string(files[i].data):
			files[i].present = true
		case files[i].name == schemaFileName:
			return fmt.Errorf("%s exists (from another swarmsync version?): init never overwrites a file; nothing was written. Refresh it with 'swarmsync schema --format jsonschema > %s', or pass --editor-schema=false", p, p)
		default:
			return fmt.Errorf("%s exists: init never overwrites a file; nothing was written. Choose another --name or directory, or remove it", p)
		}
	}
	// The result must validate, alone and with the specs already there.
	if _, err := schema.Load([]schema.File{{Name: specName, Data: spec}}); err != nil {
		return initInvalid(a, err)
	}
	if existing, ok := readSpecFiles(o.dir); ok {
		if _, err := schema.Load(existing); err == nil {
			if _, err := schema.Load(append(existing, schema.File{Name: specName, Data: spec})); err != nil {
				return initInvalid(a, err)
			}
		}
	}
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return fmt.Errorf("failed to create %s: %w", o.dir, err)
	}
	for _, f := range files {
		if f.present {
			continue
		}
		if err := writeNew(filepath.Join(o.dir, f.name), f.data); err != nil {
			return err
		}
	}
	renderInitDone(a.stdout, o, files)
	return nil
}

// initFile is one file init writes.
type initFile struct {
	name string
	data []byte
	// sameIsFine: an existing file with the same content is kept as it is.
	sameIsFine bool
	// present is set when the file exists with the same content.
	present bool
}

// check rejects flag combinations before anything is rendered.
func (o *initOptions) check() error {
	switch o.provider {
	case "local":
		var aws []string
		for _, f := range []struct {
			name string
			set  bool
		}{{"--region", o.region != ""}, {"--image", o.image != ""}, {"--subnets", len(o.subnets) > 0},
			{"--security-groups", len(o.securityGroups) > 0}, {"--instance-profile", o.instanceProfile != ""}, {"--key-name", o.keyName != ""}} {
			if f.set {
				aws = append(aws, f.name)
			}
		}
		if len(aws) == 1 {
			return fmt.Errorf("%s applies to --provider aws only; this spec is for --provider local", aws[0])
		}
		if len(aws) > 1 {
			return fmt.Errorf("%s apply to --provider aws only; this spec is for --provider local", strings.Join(aws, ", "))
		}
	case "aws":
		if o.subnet != "" {
			return errors.New("--subnet is the local provider's bridge network; on aws, pass --subnets (subnet ids)")
		}
		var missing []string
		if o.region == "" {
			missing = append(missing, "--region (e.g. eu-west-1)")
		}
		if o.image == "" {
			missing = append(missing, "--image (an AMI id, e.g. ami-0123456789abcdef0)")
		}
		if len(o.subnets) == 0 {
			missing = append(missing, "--subnets (subnet ids, one per availability zone)")
		}
		if len(missing) > 0 {
			return fmt.Errorf("init --provider aws needs %s: every group launches from that image into those subnets", strings.Join(missing, ", "))
		}
	default:
		return fmt.Errorf("unknown --provider %q: use local or aws", o.provider)
	}
	if o.workers < 0 {
		return fmt.Errorf("--workers is %d: use 0 or more", o.workers)
	}
	return nil
}

// initInvalid reports a spec init would write that does not validate: the
// diagnostics speak of the spec's fields, which the flags set.
func initInvalid(a *app, err error) error {
	var ds schema.Diagnostics
	if errors.As(err, &ds) {
		renderDiagnostics(a.stderr, ds)
		return errors.New("the flags make an invalid spec (above); nothing was written")
	}
	return err
}

// readSpecFiles reads the spec files directly in dir, if it exists.
func readSpecFiles(dir string) ([]schema.File, bool) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, false
	}
	var files []schema.File
	for _, e := range entries {
		if e.Type().IsRegular() && schema.IsSpecFile(e.Name()) {
			data, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				return nil, false
			}
			files = append(files, schema.File{Name: e.Name(), Data: data})
		}
	}
	return files, len(files) > 0
}

// writeNew creates path with data; it fails if path exists.
func writeNew(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s exists: init never overwrites a file", path)
		}
		return fmt.Errorf("failed to create %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("failed to write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return fmt.Errorf("failed to write %s: %w", path, err)
	}
	return nil
}
