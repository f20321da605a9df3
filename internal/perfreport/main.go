package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

func main() {
	data := flag.String("data", "docs/figures/data", "directory of the JSON figures the lab tests wrote (SWARMSYNC_PERF_OUT)")
	out := flag.String("out", "docs/figures", "directory for the PNG figures")
	bench := flag.String("bench", "", "read the planner benchmark's output from this file instead of running it")
	flag.Parse()
	if err := run(os.Stdout, *data, *out, *bench); err != nil {
		fmt.Fprintln(os.Stderr, "perfreport:", err)
		os.Exit(1)
	}
}

// planPoint is one size of the planner benchmark.
type planPoint struct {
	Nodes  int
	Time   time.Duration
	CPU    time.Duration
	Allocs float64
	Bytes  float64
	Steps  float64
}

// Mirrors of the JSON the lab tests write (internal/e2e, cmd/swarmsync).
type scalePhase struct {
	Name     string                    `json:"name"`
	Nodes    int                       `json:"nodes"`
	Passes   int                       `json:"passes"`
	Wall     time.Duration             `json:"wall_ns"`
	Calls    map[string]map[string]int `json:"calls"`
	Steps    map[string]int            `json:"steps"`
	StepWall map[string]time.Duration  `json:"step_wall_ns"`
}

type scaleReport struct {
	World    string       `json:"world"`
	Managers int          `json:"managers"`
	Workers  int          `json:"workers"`
	Delta    int          `json:"delta"`
	Phases   []scalePhase `json:"phases"`
}

type emulatorPhase struct {
	Name      string         `json:"name"`
	Instances int            `json:"instances"`
	Requests  map[string]int `json:"requests"`
	Wall      time.Duration  `json:"wall_ns"`
	Waited    time.Duration  `json:"limiter_wait_ns"`
}

type addedPoint struct {
	Added int           `json:"added"`
	Nodes int           `json:"nodes"`
	Wall  time.Duration `json:"wall_ns"`
}

type soakSample struct {
	Pass       int     `json:"pass"`
	Goroutines int     `json:"goroutines"`
	FDs        int     `json:"fds"`
	RSSMiB     float64 `json:"rss_mib"`
	HeapMiB    float64 `json:"heap_mib"`
}

func run(w io.Writer, data, out, benchFile string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	var benchOut []byte
	var err error
	if benchFile != "" {
		benchOut, err = os.ReadFile(benchFile)
	} else {
		cmd := exec.Command("go", "test", "-run", "^$", "-bench", "^BenchmarkCompute$", "-benchmem", "-count", "3", "./plan")
		cmd.Stderr = os.Stderr
		benchOut, err = cmd.Output()
	}
	if err != nil {
		return fmt.Errorf("failed to run the planner benchmark: %w", err)
	}
	pts := parseBench(benchOut)
	if len(pts) == 0 {
		return fmt.Errorf("no BenchmarkCompute results in the benchmark output")
	}
	fmt.Fprintf(w, "Plan (BenchmarkCompute, best of the runs)\n%8s %12s %12s %10s %10s %8s\n", "nodes", "CPU time", "wall time", "allocs", "KiB", "steps")
	for _, p := range pts {
		fmt.Fprintf(w, "%8d %12s %12s %10.0f %10.0f %8.0f\n", p.Nodes, p.CPU.Round(10*time.Microsecond), p.Time.Round(10*time.Microsecond), p.Allocs, p.Bytes/1024, p.Steps)
	}
	if err := planFigure(filepath.Join(out, "plan.png"), pts); err != nil {
		return err
	}

	var scales []scaleReport
	files, _ := filepath.Glob(filepath.Join(data, "scale-*.json"))
	for _, f := range files {
		var r scaleReport
		if err := readJSON(f, &r); err != nil {
			return err
		}
		scales = append(scales, r)
	}
	sort.Slice(scales, func(i, j int) bool {
		if scales[i].World != scales[j].World {
			return scales[i].World < scales[j].World
		}
		return scales[i].Workers < scales[j].Workers
	})
	var emu []emulatorPhase
	if err := readJSON(filepath.Join(data, "emulator.json"), &emu); err != nil && !os.IsNotExist(err) {
		return err
	}
	calls := callsTable(w, scales, emu)
	if err := callsFigure(filepath.Join(out, "calls.png"), calls); err != nil {
		return err
	}
	phaseTable(w, scales)

	var added []addedPoint
	if err := readJSON(filepath.Join(data, "added.json"), &added); err == nil {
		fmt.Fprintf(w, "\nApply wall time vs workers added (local machines)\n%8s %8s %10s %14s\n", "added", "nodes", "wall", "per worker")
		for _, a := range added {
			fmt.Fprintf(w, "%8d %8d %10s %14s\n", a.Added, a.Nodes, a.Wall.Round(10*time.Millisecond), (a.Wall / time.Duration(a.Added)).Round(10*time.Millisecond))
		}
		if err := addedFigure(filepath.Join(out, "apply.png"), added); err != nil {
			return err
		}
	} else if !os.IsNotExist(err) {
		return err
	}

	var soak []soakSample
	if err := readJSON(filepath.Join(data, "soak.json"), &soak); err == nil && len(soak) > 0 {
		first, last := soak[min(4, len(soak)-1)], soak[len(soak)-1]
		fmt.Fprintf(w, "\nSoak (apply --auto, steady cluster, %d passes)\n%10s %10s %10s\n", last.Pass, "", "pass "+strconv.Itoa(first.Pass), "pass "+strconv.Itoa(last.Pass))
		fmt.Fprintf(w, "%10s %10d %10d\n%10s %10d %10d\n%10s %10.1f %10.1f\n%10s %10.1f %10.1f\n",
			"goroutines", first.Goroutines, last.Goroutines, "fds", first.FDs, last.FDs,
			"RSS MiB", first.RSSMiB, last.RSSMiB, "heap MiB", first.HeapMiB, last.HeapMiB)
		if err := soakFigure(filepath.Join(out, "soak.png"), soak); err != nil {
			return err
		}
	} else if err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("failed to read %s: %w", path, err)
	}
	return nil
}

var benchLine = regexp.MustCompile(`^BenchmarkCompute/(\d+)(?:-\d+)?\s+\d+\s+(.*)$`)

// parseBench reads `go test -bench -benchmem` output: the best (lowest
// time) run per size.
func parseBench(out []byte) []planPoint {
	best := map[int]planPoint{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[1])
		p := planPoint{Nodes: n}
		f := strings.Fields(m[2])
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				p.Time = time.Duration(v)
			case "cpu-ns/op":
				p.CPU = time.Duration(v)
			case "allocs/op":
				p.Allocs = v
			case "B/op":
				p.Bytes = v
			case "steps":
				p.Steps = v
			}
		}
		if old, ok := best[n]; !ok || p.CPU+p.Time < old.CPU+old.Time {
			best[n] = p
		}
	}
	var pts []planPoint
	for _, p := range best {
		pts = append(pts, p)
	}
	sort.Slice(pts, func(i, j int) bool { return pts[i].Nodes < pts[j].Nodes })
	return pts
}

// callPoint is the API calls of one steady pass at a size.
type callPoint struct {
	Source string
	Nodes  int
	Docker int
	Cloud  int
}

// terraformReads are Terraform's reads per aws_instance on refresh (LAB.md).
const terraformLow, terraformHigh = 8, 12

// callsTable prints the calls of one steady pass (no changes) per size:
// measured on real Swarms (scale scenarios) and, for fleets the machine
// cannot run, the emulator's DescribeInstances pages plus the 3 Docker
// calls of an observation (constant in N, measured above).
func callsTable(w io.Writer, scales []scaleReport, emu []emulatorPhase) []callPoint {
	var pts []callPoint
	for _, r := range scales {
		for _, ph := range r.Phases {
			if ph.Name != "steady pass" {
				continue
			}
			p := callPoint{Source: r.World, Nodes: ph.Nodes}
			for _, phase := range []string{"observe", "apply"} {
				for k, v := range ph.Calls[phase] {
					switch {
					case strings.HasPrefix(k, "docker "):
						p.Docker += v
					case strings.HasPrefix(k, "cloud "):
						p.Cloud += v
					}
				}
			}
			pts = append(pts, p)
		}
	}
	for _, e := range emu {
		if e.Name == "observe" {
			pts = append(pts, callPoint{Source: "aws emulator (cloud only) + 3 Docker", Nodes: e.Instances, Docker: 3, Cloud: e.Requests["DescribeInstances"]})
		}
	}
	sort.SliceStable(pts, func(i, j int) bool { return pts[i].Nodes < pts[j].Nodes })
	fmt.Fprintf(w, "\nAPI calls of one pass with no changes (observe; leader lookup excluded)\n%-38s %7s %7s %7s %7s %16s %12s\n",
		"measured on", "nodes", "docker", "cloud", "total", "terraform reads", "ratio")
	for _, p := range pts {
		total := p.Docker + p.Cloud
		fmt.Fprintf(w, "%-38s %7d %7d %7d %7d %7d – %-6d %5.0f – %.0f×\n", p.Source, p.Nodes, p.Docker, p.Cloud, total,
			terraformLow*p.Nodes, terraformHigh*p.Nodes, float64(terraformLow*p.Nodes)/float64(total), float64(terraformHigh*p.Nodes)/float64(total))
	}
	return pts
}

// phaseTable prints wall time and calls per phase of every scale run.
func phaseTable(w io.Writer, scales []scaleReport) {
	for _, r := range scales {
		fmt.Fprintf(w, "\nScale scenario on %s, 3 managers + %d workers (±%d)\n%-22s %6s %7s %10s %8s %7s %7s  %s\n",
			r.World, r.Workers, r.Delta, "phase", "nodes", "passes", "wall", "docker", "cloud", "launch", "slowest step kinds (summed wall)")
		for _, ph := range r.Phases {
			docker, cloud := 0, 0
			for _, m := range ph.Calls {
				for k, v := range m {
					switch {
					case strings.HasPrefix(k, "docker "):
						docker += v
					case strings.HasPrefix(k, "cloud "):
						cloud += v
					}
				}
			}
			type kv struct {
				k string
				v time.Duration
			}
			var kinds []kv
			for k, v := range ph.StepWall {
				kinds = append(kinds, kv{k, v})
			}
			sort.Slice(kinds, func(i, j int) bool { return kinds[i].v > kinds[j].v })
			var top []string
			for _, x := range kinds[:min(3, len(kinds))] {
				top = append(top, fmt.Sprintf("%s %s", x.k, x.v.Round(100*time.Millisecond)))
			}
			fmt.Fprintf(w, "%-22s %6d %7d %10s %8d %7d %7d  %s\n", ph.Name, ph.Nodes, ph.Passes, ph.Wall.Round(10*time.Millisecond),
				docker, cloud, ph.Calls["launch"]["cloud Launch"], strings.Join(top, ", "))
		}
	}
}

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	p.Legend.Left = true
	return p
}

func logScales(p *plot.Plot) {
	p.X.Scale = plot.LogScale{}
	p.Y.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
}

func save(p *plot.Plot, path string) error {
	if err := p.Save(16*vg.Centimeter, 10*vg.Centimeter, path); err != nil {
		return fmt.Errorf("failed to draw %s: %w", path, err)
	}
	return nil
}

func planFigure(path string, pts []planPoint) error {
	p := newPlot("Plan time and allocations vs nodes (BenchmarkCompute)", "nodes", "ms per plan  /  thousand allocations")
	logScales(p)
	cpu, tm, al := make(plotter.XYs, len(pts)), make(plotter.XYs, len(pts)), make(plotter.XYs, len(pts))
	for i, pt := range pts {
		cpu[i] = plotter.XY{X: float64(pt.Nodes), Y: float64(pt.CPU) / 1e6}
		tm[i] = plotter.XY{X: float64(pt.Nodes), Y: float64(pt.Time) / 1e6}
		al[i] = plotter.XY{X: float64(pt.Nodes), Y: pt.Allocs / 1000}
	}
	if err := plotutil.AddLinePoints(p, "CPU time (ms)", cpu, "wall time (ms, shared machine)", tm, "allocations (thousands)", al); err != nil {
		return err
	}
	return save(p, path)
}

func callsFigure(path string, pts []callPoint) error {
	if len(pts) == 0 {
		return nil
	}
	p := newPlot("API calls of one pass with no changes", "nodes", "calls per pass")
	logScales(p)
	var ss, lo, hi plotter.XYs
	for _, pt := range pts {
		n := float64(pt.Nodes)
		ss = append(ss, plotter.XY{X: n, Y: float64(pt.Docker + pt.Cloud)})
		lo = append(lo, plotter.XY{X: n, Y: terraformLow * n})
		hi = append(hi, plotter.XY{X: n, Y: terraformHigh * n})
	}
	if err := plotutil.AddLinePoints(p, "swarmsync (measured)", ss, "Terraform refresh, 8 reads/instance", lo, "Terraform refresh, 12 reads/instance", hi); err != nil {
		return err
	}
	return save(p, path)
}

func addedFigure(path string, pts []addedPoint) error {
	p := newPlot("Apply wall time vs workers added (local machines)", "workers added in one apply", "seconds")
	xy := make(plotter.XYs, len(pts))
	for i, a := range pts {
		xy[i] = plotter.XY{X: float64(a.Added), Y: a.Wall.Seconds()}
	}
	if err := plotutil.AddLinePoints(p, "launch + join + label", xy); err != nil {
		return err
	}
	return save(p, path)
}

func soakFigure(path string, s []soakSample) error {
	p := newPlot(fmt.Sprintf("Daemon loop on a steady cluster, %d passes", s[len(s)-1].Pass), "pass", "count  /  MiB")
	g, f, r, h := make(plotter.XYs, len(s)), make(plotter.XYs, len(s)), make(plotter.XYs, len(s)), make(plotter.XYs, len(s))
	top := 0.0
	for i, x := range s {
		g[i] = plotter.XY{X: float64(x.Pass), Y: float64(x.Goroutines)}
		f[i] = plotter.XY{X: float64(x.Pass), Y: float64(x.FDs)}
		r[i] = plotter.XY{X: float64(x.Pass), Y: x.RSSMiB}
		h[i] = plotter.XY{X: float64(x.Pass), Y: x.HeapMiB}
		top = math.Max(top, math.Max(x.RSSMiB, float64(max(x.Goroutines, x.FDs))))
	}
	p.Y.Min, p.Y.Max = 0, top*1.3
	if err := plotutil.AddLines(p, "goroutines", g, "open descriptors", f, "RSS (MiB)", r, "heap in use (MiB)", h); err != nil {
		return err
	}
	return save(p, path)
}
