// Command mindrouter-admitbench measures Admit+Release over real gRPC (make
// bench-admit). It starts an in-process control plane — admission and the
// fair-share scheduler over fake identity and registry, behind the production gRPC
// server with its interceptors — on a loopback port, drives it with a closed-loop
// and an open-loop load generator, and prints a markdown table.
//
// The load generator shares the process (and the machine's cores) with the
// server, so the CPU figure is both together.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"time"
)

type config struct {
	mode       string
	workers    int
	rate       int
	callers    int
	conns      int
	duration   time.Duration
	warmup     time.Duration
	hold       time.Duration
	runs       int
	users      int
	backends   int
	slots      int
	policy     string
	tracing    string
	gogc       int
	floor      bool
	release    string
	cpuprofile string
	// blockprofile, when set, receives the blocking and mutex-contention profile.
	blockprofile string
}

func main() {
	var cfg config
	flag.StringVar(&cfg.mode, "mode", "both", "closed, open or both")
	flag.IntVar(&cfg.workers, "workers", 64, "closed loop: concurrent callers")
	flag.IntVar(&cfg.rate, "rate", 5000, "open loop: admissions per second")
	flag.IntVar(&cfg.callers, "callers", 256, "open loop: callers that send the scheduled requests")
	flag.IntVar(&cfg.conns, "conns", 2, "gRPC connections (data-plane replicas)")
	flag.DurationVar(&cfg.duration, "duration", 10*time.Second, "measured time per run")
	flag.DurationVar(&cfg.warmup, "warmup", 2*time.Second, "unmeasured time before each run")
	flag.DurationVar(&cfg.hold, "hold", 0, "time each lease is held before its Release")
	flag.IntVar(&cfg.runs, "runs", 3, "runs per mode; the table ends with their median")
	flag.IntVar(&cfg.users, "users", 100, "distinct users (weights cycle 1, 2, 3, 10)")
	flag.IntVar(&cfg.backends, "backends", 4, "backends serving the model")
	flag.IntVar(&cfg.slots, "slots", 64, "slots (max_concurrent) per backend")
	flag.StringVar(&cfg.policy, "policy", "wdrr", "queue order: wdrr or fifo")
	flag.StringVar(&cfg.release, "release", "session", "how releases travel: session (production: batched on each replica's session stream) or unary (one Release call each)")
	flag.BoolVar(&cfg.floor, "floor", false, "measure the gRPC floor instead: two ListModels calls (same server, interceptors and auth) per pair")
	flag.IntVar(&cfg.gogc, "gogc", 100, "garbage-collector target percentage (debug.SetGCPercent; Go's default 100)")
	flag.StringVar(&cfg.tracing, "tracing", "none", "server tracing: none (production without an OTLP endpoint: no instrumentation), sdk (spans recorded, as with an exporter) or noop")
	flag.StringVar(&cfg.cpuprofile, "cpuprofile", "", "write a CPU profile of the measured runs to this file")
	flag.StringVar(&cfg.blockprofile, "blockprofile", "", "write a blocking profile (mutexes and channels) to this file")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "mindrouter-admitbench:", err)
		os.Exit(1)
	}
}

func (c config) validate() error {
	switch {
	case c.mode != "closed" && c.mode != "open" && c.mode != "both":
		return fmt.Errorf("mode %q: use closed, open or both", c.mode)
	case c.policy != "wdrr" && c.policy != "fifo":
		return fmt.Errorf("policy %q: use wdrr or fifo", c.policy)
	case c.release != "session" && c.release != "unary":
		return fmt.Errorf("release %q: use session or unary", c.release)
	case c.tracing != "none" && c.tracing != "sdk" && c.tracing != "noop":
		return fmt.Errorf("tracing %q: use none, sdk or noop", c.tracing)
	case c.workers < 1, c.rate < 1, c.callers < 1, c.conns < 1, c.runs < 1, c.users < 1, c.backends < 1, c.slots < 1:
		return errors.New("workers, rate, callers, conns, runs, users, backends and slots must be at least 1")
	case c.duration < time.Second:
		return errors.New("duration must be at least 1s")
	}
	return nil
}

func run(ctx context.Context, cfg config, w io.Writer) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	if cfg.cpuprofile != "" {
		f, err := os.Create(cfg.cpuprofile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	if cfg.blockprofile != "" {
		runtime.SetBlockProfileRate(10_000) // one sample per 10 µs blocked
		runtime.SetMutexProfileFraction(10)
		defer func() {
			if err := writeProfile(cfg.blockprofile, "block"); err != nil {
				fmt.Fprintln(os.Stderr, "mindrouter-admitbench:", err)
			}
			if err := writeProfile(cfg.blockprofile+".mutex", "mutex"); err != nil {
				fmt.Fprintln(os.Stderr, "mindrouter-admitbench:", err)
			}
		}()
	}
	defer debug.SetGCPercent(debug.SetGCPercent(cfg.gogc))
	what := "Admit+Release"
	if cfg.floor {
		what = "Floor (ListModels×2 in place of Admit+Release)"
	}
	fmt.Fprintf(w, what+" over gRPC on 127.0.0.1: %d backends × %d slots, %d users, policy %s, %d connections, "+
		"releases %s, hold %s, tracing %s, GOGC %d, %s measured after %s warm-up, GOMAXPROCS %d, %s/%s.\n\n",
		cfg.backends, cfg.slots, cfg.users, cfg.policy, cfg.conns, cfg.release, cfg.hold, cfg.tracing, cfg.gogc, cfg.duration, cfg.warmup,
		runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintln(w, "| Load | Run | Admissions/s | Admit p50 | p90 | p99 | p99.9 | Release p99 | Queued | Errors | CPU (of one core) |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|")
	for _, mode := range []string{"closed", "open"} {
		if cfg.mode != "both" && cfg.mode != mode {
			continue
		}
		var results []summary
		for i := range cfg.runs {
			res, err := once(ctx, cfg, mode)
			if err != nil {
				return err
			}
			s := summarize(res)
			results = append(results, s)
			row(w, s, fmt.Sprint(i+1))
		}
		if cfg.runs > 1 {
			row(w, median(results), "median")
		}
	}
	return nil
}

// writeProfile writes the named runtime profile to path.
func writeProfile(path, name string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("%s profile: %w", name, err)
	}
	defer f.Close()
	if err := pprof.Lookup(name).WriteTo(f, 0); err != nil {
		return fmt.Errorf("%s profile: %w", name, err)
	}
	return nil
}

// once runs one measurement against a fresh control plane.
func once(ctx context.Context, cfg config, mode string) (res result, err error) {
	c, err := startCore(ctx, cfg)
	if err != nil {
		return result{}, err
	}
	defer func() { err = errors.Join(err, c.stop()) }()
	cl, err := dial(ctx, c.addr, cfg.conns, cfg.users, cfg.floor, cfg.release == "session")
	if err != nil {
		return result{}, err
	}
	defer cl.close()
	runtime.GC()
	if mode == "closed" {
		return closedLoop(ctx, cl, cfg), nil
	}
	return openLoop(ctx, cl, cfg), nil
}

// summary is one row of the table.
type summary struct {
	mode                       string
	rate                       float64
	p50, p90, p99, p999, rel99 time.Duration
	queued, cpu                float64
	errors                     int
}

func summarize(r result) summary {
	return summary{
		mode: r.mode, rate: r.rate(),
		p50: pct(r.admitLat, .5), p90: pct(r.admitLat, .9), p99: pct(r.admitLat, .99), p999: pct(r.admitLat, .999),
		rel99: pct(r.relLat, .99), queued: r.queuedPct, cpu: r.cpuPct, errors: r.errors,
	}
}

func row(w io.Writer, s summary, label string) {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond)) }
	fmt.Fprintf(w, "| %s | %s | %.0f | %s | %s | %s | %s | %s | %.1f%% | %d | %.0f%% |\n",
		s.mode, label, s.rate, ms(s.p50), ms(s.p90), ms(s.p99), ms(s.p999), ms(s.rel99), s.queued, s.errors, s.cpu)
}

// median takes the median of every column separately.
func median(ss []summary) summary {
	mid := func(vals []float64) float64 {
		slices.Sort(vals)
		return vals[len(vals)/2]
	}
	col := func(f func(summary) float64) float64 {
		vals := make([]float64, len(ss))
		for i, s := range ss {
			vals[i] = f(s)
		}
		return mid(vals)
	}
	dur := func(f func(summary) time.Duration) time.Duration {
		return time.Duration(col(func(s summary) float64 { return float64(f(s)) }))
	}
	return summary{
		mode:   ss[0].mode,
		rate:   col(func(s summary) float64 { return s.rate }),
		p50:    dur(func(s summary) time.Duration { return s.p50 }),
		p90:    dur(func(s summary) time.Duration { return s.p90 }),
		p99:    dur(func(s summary) time.Duration { return s.p99 }),
		p999:   dur(func(s summary) time.Duration { return s.p999 }),
		rel99:  dur(func(s summary) time.Duration { return s.rel99 }),
		queued: col(func(s summary) float64 { return s.queued }),
		cpu:    col(func(s summary) float64 { return s.cpu }),
		errors: int(col(func(s summary) float64 { return float64(s.errors) })),
	}
}
