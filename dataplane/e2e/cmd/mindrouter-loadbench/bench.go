package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"time"
)

// plan is what one run measures; -quick shrinks it.
type plan struct {
	sequentialN  int
	duration     time.Duration
	concurrency  []int
	rates        []float64
	streams      int
	shortTokens  int // tokens per stream for the direct/gateway comparison
	longTokens   int // tokens per stream for the allocation-growth check
	streamWindow time.Duration
	profileDir   string
	soak         time.Duration
	soakRate     float64
	users        int
}

// maxOutstanding bounds the open loop's outstanding requests: 2048, or 32 per
// benchmark user (the control plane's per-user cap) if that is less, so that a
// backlog is reported as latency rather than as the cap's 429s.
func (p plan) maxOutstanding() int { return min(2048, 32*max(p.users, 1)) }

func fullPlan(d time.Duration) plan {
	return plan{
		sequentialN: 2000, duration: d, concurrency: []int{32, 64, 128},
		rates: []float64{500, 1000, 2000, 3000, 5000}, streams: 512, shortTokens: 50, longTokens: 200,
		streamWindow: max(d, 5*time.Second), soakRate: 300,
	}
}

func quickPlan() plan {
	return plan{
		sequentialN: 300, duration: 2 * time.Second, concurrency: []int{32},
		rates: []float64{500, 2000}, streams: 64, shortTokens: 20, longTokens: 80,
		streamWindow: 3 * time.Second, soakRate: 300,
	}
}

// measured is a load run with the CPU time each process spent during it.
type measured struct {
	result
	cpu map[string]time.Duration
	// foreign is the share of the machine's CPU capacity that other processes
	// (other people's builds and tests) used during the run.
	foreign float64
	// ours is the share of the machine's CPU capacity the benchmark's own
	// processes used during the run.
	ours float64
	// argon2 counts the control plane's Argon2id key verifications during the
	// run: each is a cache miss that costs CPU and holds that key's requests.
	argon2 int
}

// cpuPer returns a process's CPU time per successful request, in microseconds.
func (m measured) cpuPer(name string, units int) float64 {
	if units == 0 {
		return 0
	}
	return float64(m.cpu[name].Microseconds()) / float64(units)
}

// bench runs the plan against a started stack and collects the report.
type bench struct {
	s      *stack
	p      plan
	out    io.Writer // progress lines
	direct *http.Client
	gw     *http.Client
	rep    *report
}

// measure runs f and charges each process's CPU time to it.
func (b *bench) measure(f func() result) measured {
	ps := b.s.procs()
	a0, aerr := scrape(context.Background(), b.s.cpREST+"/metrics", argonMetric)
	before, busy0, t0 := snapCPU(ps), machineBusy(), time.Now()
	r := f()
	after, busy1, wall := snapCPU(ps), machineBusy(), time.Since(t0)
	m := measured{result: r, cpu: map[string]time.Duration{}, argon2: -1}
	if a1, err := scrape(context.Background(), b.s.cpREST+"/metrics", argonMetric); err == nil && aerr == nil {
		m.argon2 = int(a1[argonMetric] - a0[argonMetric])
	}
	ours := time.Duration(0)
	for _, p := range ps {
		m.cpu[p.name] = after[p.pid] - before[p.pid]
		ours += m.cpu[p.name]
	}
	if wall > 0 {
		m.foreign = max(float64(busy1-busy0-ours), 0) / float64(wall) / float64(runtime.NumCPU())
		m.ours = float64(ours) / float64(wall) / float64(runtime.NumCPU())
	}
	return m
}

func (b *bench) logf(format string, a ...any) {
	fmt.Fprintf(b.out, "loadbench: "+format+"\n", a...)
}

// warmUp fills connection pools and caches on both paths.
func (b *bench) warmUp(ctx context.Context) {
	d := min(2*time.Second, b.p.duration)
	closedLoop(ctx, b.direct, directChat(b.s, modelVLLM, false, 16), 16, d)
	closedLoop(ctx, b.direct, proxyChat(b.s, false, 16), 16, d/2)
	closedLoop(ctx, b.gw, gatewayChat(b.s, modelVLLM, false, 16), 16, d)
	closedLoop(ctx, b.gw, gatewayChat(b.s, modelOllama, false, 16), 4, d/2)
}

// latency measures one concurrent non-streamed request, direct and through the
// gateway, in alternating blocks so that drifting background load hits both alike.
func (b *bench) latency(ctx context.Context) {
	const blocks = 8
	for _, model := range []string{modelVLLM, modelOllama} {
		var dt, gt, pt tally
		var de, ge, pe time.Duration
		hop := model == modelVLLM // the bare proxy hop fronts the vLLM simulator
		admit := []string{"mindrouter_dp_admit_seconds_sum", "mindrouter_dp_admit_seconds_count"}
		a0, aerr := scrape(ctx, b.s.dpURL+"/metrics", admit...)
		m := b.measure(func() result {
			for range blocks {
				r := sequential(ctx, b.direct, directChat(b.s, model, false, 16), b.p.sequentialN/blocks)
				dt.add(r.lat, r.errs, r.firstErr)
				de += r.elapsed
				if hop {
					r = sequential(ctx, b.direct, proxyChat(b.s, false, 16), b.p.sequentialN/blocks)
					pt.add(r.lat, r.errs, r.firstErr)
					pe += r.elapsed
				}
				r = sequential(ctx, b.gw, gatewayChat(b.s, model, false, 16), b.p.sequentialN/blocks)
				gt.add(r.lat, r.errs, r.firstErr)
				ge += r.elapsed
			}
			return result{}
		})
		row := latRow{model: model, direct: dt.result(de), gateway: gt.result(ge), foreign: m.foreign,
			dpCPU: m.cpuPer("data plane", gt.ok), cpCPU: m.cpuPer("control plane", gt.ok)}
		if hop {
			pr := pt.result(pe)
			row.proxy, row.proxyCPU = &pr, m.cpuPer("proxy hop", pt.ok)
			b.logf("1-concurrency %s: bare proxy hop p50 %s p99 %s", model, us(pr.pct(50)), us(pr.pct(99)))
		}
		if a1, err := scrape(ctx, b.s.dpURL+"/metrics", admit...); err == nil && aerr == nil {
			if n := a1[admit[1]] - a0[admit[1]]; n > 0 {
				row.admitMean = time.Duration((a1[admit[0]] - a0[admit[0]]) / n * 1e9)
			}
		}
		b.logf("1-concurrency %s: direct p50 %s p99 %s, gateway p50 %s p99 %s", model,
			us(row.direct.pct(50)), us(row.direct.pct(99)), us(row.gateway.pct(50)), us(row.gateway.pct(99)))
		b.rep.latency = append(b.rep.latency, row)
		if b.p.profileDir != "" && model == modelVLLM {
			d := max(b.p.duration, 3*time.Second)
			prof := startProfiles(ctx, b.s, b.p.profileDir, "1-concurrency", d)
			closedLoop(ctx, b.gw, gatewayChat(b.s, model, false, 16), 1, d)
			b.rep.profiles = append(b.rep.profiles, prof.wait(ctx)...)
		}
	}
}

// saturation runs closed loops at each concurrency, direct then gateway.
func (b *bench) saturation(ctx context.Context) {
	for _, c := range b.p.concurrency {
		for _, gw := range []bool{false, true} {
			client, spec := b.pick(gw, false, 16)
			var prof *profiler
			if gw && b.p.profileDir != "" && c == b.p.concurrency[len(b.p.concurrency)/2] {
				prof = startProfiles(ctx, b.s, b.p.profileDir, fmt.Sprintf("sat-c%d", c), b.p.duration)
			}
			m := b.measure(func() result { return closedLoop(ctx, client, spec, c, b.p.duration) })
			if prof != nil {
				b.rep.profiles = append(b.rep.profiles, prof.wait(ctx)...)
			}
			b.logf("saturation c=%d gateway=%t: %.0f rps p50 %s p99 %s errors %d %s", c, gw, m.rps(),
				us(m.pct(50)), us(m.pct(99)), m.errs, m.firstErr)
			b.rep.sat = append(b.rep.sat, loadRow{gateway: gw, concurrency: c, m: m})
		}
	}
}

// openLoads offers each fixed rate, direct then gateway.
func (b *bench) openLoads(ctx context.Context) {
	for _, rate := range b.p.rates {
		for _, gw := range []bool{false, true} {
			client, spec := b.pick(gw, false, 16)
			m := b.measure(func() result {
				return openLoop(ctx, client, func(int) reqSpec { return spec }, rate, b.p.duration, b.p.maxOutstanding())
			})
			b.logf("open loop %.0f rps gateway=%t: achieved %.0f rps p50 %s p99 %s errors %d %s; slow (>%s) by second: %s; %s", rate, gw, m.rps(),
				us(m.pct(50)), us(m.pct(99)), m.errs, m.firstErr, slowLatency, m.stalls(), m.lag())
			b.rep.open = append(b.rep.open, loadRow{gateway: gw, rate: rate, m: m})
		}
	}
}

// pick returns the client and request for the instant vLLM model on one path.
func (b *bench) pick(gateway, stream bool, tokens int) (*http.Client, reqSpec) {
	if gateway {
		return b.gw, gatewayChat(b.s, modelVLLM, stream, tokens)
	}
	return b.direct, directChat(b.s, modelVLLM, stream, tokens)
}

// streaming holds p.streams streams open against the paced simulator, direct and
// through the gateway, then once more through the gateway with longer streams
// while counting the data plane's allocations per chunk.
func (b *bench) streaming(ctx context.Context) error {
	run := func(gateway bool, tokens int) (streamRow, error) {
		client, spec := b.direct, directChat(b.s, modelPaced, true, tokens)
		if gateway {
			client, spec = b.gw, gatewayChat(b.s, modelPaced, true, tokens)
		}
		var before, after map[string]float64
		var err error
		if gateway {
			if before, err = scrape(ctx, b.s.dpURL+"/metrics", allocMetrics...); err != nil {
				return streamRow{}, err
			}
		}
		var sr streamResult
		stagger := pacedTTFT + time.Duration(tokens)*pacedITL
		var prof *profiler
		if gateway && b.p.profileDir != "" {
			tag := fmt.Sprintf("streams-%dtok", tokens)
			if tokens == b.p.longTokens {
				prof = startAllocProfile(ctx, b.s, b.p.profileDir, tag, b.p.streamWindow)
			} else {
				prof = startProfiles(ctx, b.s, b.p.profileDir, tag, b.p.streamWindow)
			}
		}
		m := b.measure(func() result {
			sr = streamLoad(ctx, client, spec, b.p.streams, b.p.streamWindow, stagger)
			return result{ok: sr.streams, errs: sr.errs, elapsed: sr.elapsed}
		})
		if prof != nil {
			b.rep.profiles = append(b.rep.profiles, prof.wait(ctx)...)
		}
		row := streamRow{gateway: gateway, tokens: tokens, r: sr, m: m}
		if gateway {
			if after, err = scrape(ctx, b.s.dpURL+"/metrics", allocMetrics...); err != nil {
				return streamRow{}, err
			}
			if sr.chunks > 0 {
				row.mallocsPerChunk = (after[allocMetrics[0]] - before[allocMetrics[0]]) / float64(sr.chunks)
				row.bytesPerChunk = (after[allocMetrics[1]] - before[allocMetrics[1]]) / float64(sr.chunks)
			}
		}
		b.logf("streams=%d tokens=%d gateway=%t: %d streams, %d chunks, ttft p50 %s p99 %s, gap p50 %s p99 %s, errors %d %s",
			b.p.streams, tokens, gateway, sr.streams, sr.chunks, ms(percentile(sr.ttft, 50)), ms(percentile(sr.ttft, 99)),
			ms(percentile(sr.gap, 50)), ms(percentile(sr.gap, 99)), sr.errs, sr.firstErr)
		return row, nil
	}
	for _, c := range []struct {
		gateway bool
		tokens  int
	}{{false, b.p.shortTokens}, {true, b.p.shortTokens}, {true, b.p.longTokens}} {
		row, err := run(c.gateway, c.tokens)
		if err != nil {
			return err
		}
		b.rep.streams = append(b.rep.streams, row)
	}
	return nil
}

// allocMetrics are the data plane's cumulative allocation counters.
var allocMetrics = []string{"go_memstats_mallocs_total", "go_memstats_alloc_bytes_total"}

// peaks records each process's peak resident set (VmHWM).
func (b *bench) peaks() {
	for _, p := range b.s.procs() {
		kb, err := memKB(p.pid, "VmHWM")
		if err != nil {
			continue
		}
		b.rep.peakRSS = append(b.rep.peakRSS, rssRow{name: p.name, kb: kb})
	}
}

func us(d time.Duration) string { return fmt.Sprintf("%.0fµs", float64(d.Nanoseconds())/1e3) }
func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d.Nanoseconds())/1e6) }
