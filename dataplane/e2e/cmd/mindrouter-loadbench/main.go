// Command mindrouter-loadbench measures what the gateway adds over calling the
// same backend directly, in one run on one machine: it builds the control plane,
// the data plane and the engine simulator from this checkout, starts them as
// separate processes on loopback ports (the simulator in its own process so that
// its CPU time is not charged to anyone else), and measures
//
//  1. latency at one concurrent non-streamed request, direct and through the gateway;
//  2. throughput at saturation (closed loop, several worker counts);
//  3. latency at fixed offered rates (open loop, timed from the intended send);
//  4. time to first token and inter-chunk gaps with hundreds of paced streams,
//     and the data plane's allocations per relayed chunk;
//  5. CPU time per request of every process and their peak resident sets;
//  6. optionally, a soak at constant load sampling RSS, goroutines and heap.
//
// It prints a markdown section and writes it into -out between the markers
// <!-- loadbench:begin --> and <!-- loadbench:end --> (the soak between
// <!-- loadbench:soak:begin --> and <!-- loadbench:soak:end -->, so that the
// two can be refreshed separately; -quick writes nothing). With -profile DIR the
// binaries are built with a net/http/pprof listener added through a build
// overlay (the sources are not touched) and CPU and allocation profiles of the
// data plane and control plane are saved in DIR and summarised.
//
// Run it from anywhere inside the repository:
//
//	go run ./dataplane/e2e/cmd/mindrouter-loadbench -duration 10s
//	go run ./dataplane/e2e/cmd/mindrouter-loadbench -soak 10m
//
// It is a measuring tool: it changes nothing in the product.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mindrouter/mindrouter/dataplane/e2e/internal/cluster"
)

func main() {
	proxyHopMain()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "mindrouter-loadbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("mindrouter-loadbench", flag.ContinueOnError)
	duration := fs.Duration("duration", 10*time.Second, "length of each timed load run")
	soak := fs.Duration("soak", 0, "length of the soak at constant load (0 skips it; the full run uses 10m)")
	soakRate := fs.Float64("soak-rate", 300, "requests per second offered during the soak")
	out := fs.String("out", "docs/benchmarks.md", "markdown file whose loadbench section is written, relative to the repository root; empty writes none")
	quick := fs.Bool("quick", false, "short run for a CI smoke test (small counts, 2 s runs)")
	profile := fs.String("profile", "", "directory for pprof CPU and allocation profiles of the data plane and control plane (builds them with a pprof listener)")
	onlySoak := fs.Bool("only-soak", false, "skip the measurements and run only the soak")
	rev := fs.String("rev", "", "build the binaries from this git revision (exported with git archive) instead of the working tree")
	phases := fs.String("phases", "latency,saturation,open,streams,audit", "measurements to run (audit: the data plane with audit on vs off); a partial list prints its figures but writes no file")
	rates := fs.String("rates", "", "comma-separated offered rates for the open loop (default 500,1000,2000,3000,5000)")
	workers := fs.String("concurrency", "", "comma-separated worker counts for the saturation runs (default 32,64,128)")
	users := fs.Int("users", 32, "benchmark users, each with a key, that the gateway load is spread over (the control plane caps one user at 32 queued or in-flight requests)")
	keep := fs.Bool("keep", false, "keep the work directory (process logs, database) and print its path")
	err := fs.Parse(args)
	if err != nil {
		return err
	}
	p := fullPlan(*duration)
	if *quick {
		p = quickPlan()
	}
	p.soak, p.soakRate = *soak, *soakRate
	if *rates != "" {
		if p.rates, err = parseList(*rates); err != nil {
			return fmt.Errorf("-rates: %w", err)
		}
	}
	if *workers != "" {
		ws, err := parseList(*workers)
		if err != nil {
			return fmt.Errorf("-concurrency: %w", err)
		}
		p.concurrency = p.concurrency[:0]
		for _, w := range ws {
			p.concurrency = append(p.concurrency, int(w))
		}
	}
	if *onlySoak && p.soak <= 0 {
		return fmt.Errorf("-only-soak needs -soak")
	}
	root, err := cluster.RepoRoot()
	if err != nil {
		return err
	}
	if *profile != "" {
		if p.profileDir, err = filepath.Abs(*profile); err != nil {
			return err
		}
		if err := os.MkdirAll(p.profileDir, 0o755); err != nil {
			return err
		}
	}
	began := time.Now()
	if *users < 1 {
		return fmt.Errorf("-users must be at least 1")
	}
	p.users = *users
	rep := &report{mach: describeMachine(root), p: p, quick: *quick}

	dir, err := os.MkdirTemp("", "mindrouter-loadbench-")
	if err != nil {
		return err
	}
	if *keep {
		fmt.Fprintf(os.Stderr, "loadbench: work directory %s is kept\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	bin := filepath.Join(dir, "bin")
	fmt.Fprintf(os.Stderr, "loadbench: building the binaries (load average %s)\n", rep.mach.loadavg)
	src := root
	if *rev != "" {
		src = filepath.Join(dir, "src")
		if err := exportRev(ctx, root, *rev, src); err != nil {
			return err
		}
		rep.mach.commit = revision(root, *rev)
	}
	if err := buildBinaries(ctx, src, bin, p.profileDir != ""); err != nil {
		return err
	}
	s, err := startStack(ctx, bin, dir, p.profileDir != "", *users)
	if err != nil {
		return err
	}
	defer s.close()

	b := &bench{s: s, p: p, out: os.Stderr, direct: newClient(4096), gw: newClient(4096), rep: rep}
	want := map[string]bool{}
	for ph := range strings.SplitSeq(*phases, ",") {
		want[strings.TrimSpace(ph)] = true
	}
	partial := len(want) < 5 || *rates != "" || *workers != ""
	if !*onlySoak {
		b.logf("warming up")
		b.warmUp(ctx)
		if want["latency"] {
			b.latency(ctx)
		}
		if want["saturation"] {
			b.saturation(ctx)
		}
		if want["open"] {
			b.openLoads(ctx)
		}
		if want["audit"] {
			b.auditCost(ctx)
		}
		if want["streams"] {
			if err := b.streaming(ctx); err != nil {
				return err
			}
		}
	}
	if p.soak > 0 {
		b.logf("soak for %s at %.0f req/s", p.soak, p.soakRate)
		res := b.soak(ctx)
		rep.soak = &res
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("interrupted: %w", err)
	}
	b.peaks()
	rep.loadEnd = loadAvg()
	rep.took = time.Since(began)

	var sections [][3]string // begin, end, text
	if !*onlySoak {
		sections = append(sections, [3]string{beginMarker, endMarker, rep.render()})
	}
	if rep.soak != nil {
		sections = append(sections, [3]string{soakBeginMarker, soakEndMarker, rep.renderSoak()})
	}
	for _, sec := range sections {
		fmt.Println(sec[2])
	}
	for _, pr := range rep.profiles {
		fmt.Printf("----- profile %s (%s)\n%s\n", pr.title, pr.file, pr.top)
	}
	if *out == "" || *quick || (partial && !*onlySoak) {
		return nil
	}
	target := *out
	if !filepath.IsAbs(target) {
		target = filepath.Join(root, target)
	}
	for _, sec := range sections {
		if err := writeSection(target, sec[0], sec[1], sec[2]); err != nil {
			return fmt.Errorf("write %s: %w", target, err)
		}
	}
	fmt.Fprintf(os.Stderr, "loadbench: wrote %s\n", target)
	return nil
}

// parseList parses comma-separated positive numbers.
func parseList(s string) ([]float64, error) {
	var out []float64
	for f := range strings.SplitSeq(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("%q is not a positive number", f)
		}
		out = append(out, v)
	}
	return out, nil
}
