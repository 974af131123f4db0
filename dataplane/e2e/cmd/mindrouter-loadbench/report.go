package main

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"strings"
	"time"
)

// The generated section of the markdown file lies between these markers.
const (
	beginMarker     = "<!-- loadbench:begin -->"
	endMarker       = "<!-- loadbench:end -->"
	soakBeginMarker = "<!-- loadbench:soak:begin -->"
	soakEndMarker   = "<!-- loadbench:soak:end -->"
)

type latRow struct {
	model           string
	direct, gateway result
	proxy           *result       // the bare proxy hop (vLLM only): the floor
	foreign         float64       // other processes' share of the machine meanwhile
	dpCPU, cpCPU    float64       // µs per gateway request
	proxyCPU        float64       // µs per proxied request, in the proxy hop
	admitMean       time.Duration // mean time in Admit, from the data plane's histogram
}

type loadRow struct {
	gateway     bool
	concurrency int
	rate        float64
	m           measured
}

type streamRow struct {
	gateway                        bool
	tokens                         int
	r                              streamResult
	m                              measured
	mallocsPerChunk, bytesPerChunk float64
}

type rssRow struct {
	name string
	kb   int64
}

// report is everything one run measured.
type report struct {
	mach     machine
	loadEnd  string
	p        plan
	quick    bool
	took     time.Duration
	latency  []latRow
	sat      []loadRow
	open     []loadRow
	streams  []streamRow
	audit    []auditRow
	peakRSS  []rssRow
	soak     *soakResult
	profiles []profiled
}

func path(gateway bool) string {
	if gateway {
		return "gateway"
	}
	return "direct"
}

func f1ms(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d.Nanoseconds())/1e6) }

// signed renders a difference in milliseconds with its sign.
func signed(d time.Duration) string { return fmt.Sprintf("%+.3f", float64(d.Nanoseconds())/1e6) }

// render writes the generated markdown section (without the markers).
func (r *report) render() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	m := r.mach
	kind := "full"
	if r.quick {
		kind = "quick (-quick: CI smoke, not for comparison)"
	}
	w("### Run of %s\n\n", m.date)
	w("- Commit `%s`, %s, kernel %s.\n", m.commit, m.goVer, m.kernel)
	w("- Machine: %d × %s, %.1f GiB memory. Load average before: %s; after: %s.\n", m.cpus, m.model, m.memGiB, m.loadavg, r.loadEnd)
	w("- Plan: %s; %s per timed run; the whole run took %s.\n", kind, r.p.duration, r.took.Round(time.Second))
	w("- Everything on this one machine: the load generator, three simulator processes, one control plane (SQLite), one data plane (and, for the audit comparison, a second one with `-audit=off` on the same control plane).\n")
	w("- Gateway requests are spread over %d users of the admin group, one key each; the 1-concurrency requests use the first.\n", r.p.users)
	w("- \"key verifications\" counts the control plane's Argon2id verifications during a run (mindrouter_identity_argon2_verifications_total):")
	w(" a key's first request pays one (the control plane then trusts the key for 60 s and re-reads its row in the background while it is in use, without Argon2id). A run with verifications pays their CPU and stalls.\n")
	w("- \"other load\", and \"other\" in \"machine CPU (ours + other)\", is the share of the machine's CPU capacity used by processes outside the benchmark. \"machine CPU (ours + other)\" is the share of the machine's CPU capacity used during a run by the benchmark's processes and by everything else (other people's builds and tests); figures with a large \"other\" share are noisy.\n\n")

	w("#### Targets\n\n| target | measured | met |\n|---|---|---|\n")
	for _, t := range r.targets() {
		w("| %s | %s | %s |\n", t[0], t[1], t[2])
	}

	w("\n#### 1. One concurrent non-streamed chat request (%d requests per path, alternating blocks)\n\n", r.p.sequentialN)
	w("| backend dialect | path | p50 ms | p90 ms | p99 ms | errors | DP µs/req | CP µs/req | other load |\n|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, l := range r.latency {
		w("| %s | direct | %s | %s | %s | %d | | | |\n", l.model, f1ms(l.direct.pct(50)), f1ms(l.direct.pct(90)), f1ms(l.direct.pct(99)), l.direct.errs)
		w("| %s | gateway | %s | %s | %s | %d | %.0f | %.0f | %.0f%% |\n", l.model, f1ms(l.gateway.pct(50)), f1ms(l.gateway.pct(90)),
			f1ms(l.gateway.pct(99)), l.gateway.errs, l.dpCPU, l.cpCPU, 100*l.foreign)
		w("| %s | **added** | **%s** | **%s** | **%s** | | | | |\n", l.model, signed(l.gateway.pct(50)-l.direct.pct(50)),
			signed(l.gateway.pct(90)-l.direct.pct(90)), signed(l.gateway.pct(99)-l.direct.pct(99)))
		if p := l.proxy; p != nil {
			w("| %s | bare proxy hop | %s | %s | %s | %d | %.0f (proxy) | | |\n", l.model, f1ms(p.pct(50)), f1ms(p.pct(90)), f1ms(p.pct(99)), p.errs, l.proxyCPU)
			w("| %s | added by the hop (floor) | %s | %s | %s | | | | |\n", l.model, signed(p.pct(50)-l.direct.pct(50)),
				signed(p.pct(90)-l.direct.pct(90)), signed(p.pct(99)-l.direct.pct(99)))
			w("| %s | gateway's added ÷ floor's | %s | %s | %s | | | | |\n", l.model, floorMultiple(l.gateway, *p, l.direct, 50),
				floorMultiple(l.gateway, *p, l.direct, 90), floorMultiple(l.gateway, *p, l.direct, 99))
		}
	}
	if len(r.latency) > 0 && r.latency[0].proxy != nil {
		w("\nThe bare proxy hop is net/http/httputil.ReverseProxy alone, in its own process, in front of the same instant vLLM simulator, measured in the same alternating blocks: the least any HTTP gateway can add on this machine. The last row says how many such hops the gateway's added latency is worth.\n")
	}
	for _, l := range r.latency {
		if l.admitMean > 0 {
			w("\nMean time in Admit (one gRPC round trip to the control plane, from the data plane's mindrouter_dp_admit_seconds) for %s: %s ms.", l.model, f1ms(l.admitMean))
		}
	}
	w("\n")

	w("\n#### 2. Saturation: closed loop, non-streamed, %s per run\n\n", r.p.duration)
	w("| workers | path | req/s | p50 ms | p99 ms | errors | DP µs/req | CP µs/req | sim µs/req | load gen µs/req | machine CPU (ours + other) | key verifications |\n")
	w("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, l := range r.sat {
		w("| %d | %s | %.0f | %s | %s | %d | %s |\n", l.concurrency, path(l.gateway), l.m.rps(), f1ms(l.m.pct(50)), f1ms(l.m.pct(99)),
			l.m.errs, cpuCols(l.m, l.gateway, l.m.ok))
	}

	w("\n#### 3. Open loop at fixed offered rates, non-streamed, %s per run\n\n", r.p.duration)
	w("Latency is measured from each request's intended send time (no coordinated omission); at most %d requests outstanding.\n\n", r.p.maxOutstanding())
	w("| offered req/s | path | achieved req/s | p50 ms | p99 ms | errors | DP µs/req | CP µs/req | sim µs/req | load gen µs/req | machine CPU (ours + other) | key verifications |\n")
	w("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, l := range r.open {
		w("| %.0f | %s | %.0f | %s | %s | %d | %s |\n", l.rate, path(l.gateway), l.m.rps(), f1ms(l.m.pct(50)), f1ms(l.m.pct(99)),
			l.m.errs, cpuCols(l.m, l.gateway, l.m.ok))
	}
	r.renderStreams(w)
	r.renderAudit(w)
	r.renderResources(w)
	return b.String()
}

// floorMultiple renders the gateway's added latency at percentile p as a
// multiple of the bare proxy hop's.
func floorMultiple(gw, hop, direct result, p float64) string {
	floor := hop.pct(p) - direct.pct(p)
	if floor <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f×", float64(gw.pct(p)-direct.pct(p))/float64(floor))
}

// cpuCols renders the per-request CPU columns; the gateway's processes are idle on direct runs.
func cpuCols(m measured, gateway bool, n int) string {
	dp, cp := "–", "–"
	if gateway {
		dp = fmt.Sprintf("%.0f", m.cpuPer("data plane", n))
		cp = fmt.Sprintf("%.0f", m.cpuPer("control plane", n))
	}
	return fmt.Sprintf("%s | %s | %.0f | %.0f | %.0f%% + %.0f%% | %s", dp, cp, m.cpuPer("sim (instant vLLM)", n)+m.cpuPer("sim (paced)", n),
		m.cpuPer("load generator", n), 100*m.ours, 100*m.foreign, verifications(m, gateway))
}

// verifications renders the Argon2id key verifications of a gateway run.
func verifications(m measured, gateway bool) string {
	if !gateway || m.argon2 < 0 {
		return "–"
	}
	return fmt.Sprintf("%d", m.argon2)
}

func (r *report) renderStreams(w func(string, ...any)) {
	if len(r.streams) == 0 {
		return
	}
	w("\n#### 4. Streaming: %d concurrent streams, simulator TTFT %s, %s between tokens, %s per run\n\n",
		r.p.streams, pacedTTFT, pacedITL, r.p.streamWindow)
	w("| path | tokens/stream | streams | chunks | TTFT p50 ms | TTFT p99 ms | gap p50 ms | gap p99 ms | gap p99.9 ms | errors | other load |\n")
	w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range r.streams {
		w("| %s | %d | %d | %d | %s | %s | %s | %s | %s | %d | %.0f%% |\n", path(s.gateway), s.tokens, s.r.streams, s.r.chunks,
			f1ms(percentile(s.r.ttft, 50)), f1ms(percentile(s.r.ttft, 99)), f1ms(percentile(s.r.gap, 50)),
			f1ms(percentile(s.r.gap, 99)), f1ms(percentile(s.r.gap, 99.9)), s.r.errs, 100*s.m.foreign)
	}
	if d, g, ok := r.streamPair(); ok {
		w("\nAdded by the gateway: TTFT p50 **%s ms**, TTFT p99 **%s ms**, inter-chunk gap p99 **%s ms**.\n",
			signed(percentile(g.r.ttft, 50)-percentile(d.r.ttft, 50)), signed(percentile(g.r.ttft, 99)-percentile(d.r.ttft, 99)),
			signed(percentile(g.r.gap, 99)-percentile(d.r.gap, 99)))
	}
	w("\nCPU per content chunk of each process, the data plane's allocations per chunk (from its go_memstats counters,")
	w(" so they include everything it did meanwhile), and how busy the machine was:\n\n")
	w("| path | tokens/stream | DP µs/chunk | CP µs/stream | sim µs/chunk | load gen µs/chunk | DP mallocs/chunk | DP bytes/chunk | machine CPU used (ours + other) | key verifications |\n")
	w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range r.streams {
		if s.r.chunks == 0 {
			continue
		}
		per := func(name string) float64 { return float64(s.m.cpu[name].Microseconds()) / float64(s.r.chunks) }
		dp, cp, mallocs, bytes := "–", "–", "–", "–"
		if s.gateway {
			dp, cp = fmt.Sprintf("%.1f", per("data plane")), fmt.Sprintf("%.0f", s.m.cpuPer("control plane", s.r.streams))
			mallocs, bytes = fmt.Sprintf("%.1f", s.mallocsPerChunk), fmt.Sprintf("%.0f", s.bytesPerChunk)
		}
		w("| %s | %d | %s | %s | %.1f | %.1f | %s | %s | %.0f%% + %.0f%% | %s |\n", path(s.gateway), s.tokens, dp, cp,
			per("sim (paced)"), per("load generator"), mallocs, bytes, 100*s.m.ours, 100*s.m.foreign, verifications(s.m, s.gateway))
	}
}

// streamPair returns the direct and gateway runs at the short stream length.
func (r *report) streamPair() (d, g streamRow, ok bool) {
	var hd, hg bool
	for _, s := range r.streams {
		if s.tokens != r.p.shortTokens {
			continue
		}
		if s.gateway {
			g, hg = s, true
		} else {
			d, hd = s, true
		}
	}
	return d, g, hd && hg
}

func (r *report) renderResources(w func(string, ...any)) {
	w("\n#### 5. Peak resident set (VmHWM) over the whole run\n\n| process | peak RSS MiB |\n|---|---:|\n")
	for _, p := range r.peakRSS {
		w("| %s | %.1f |\n", p.name, float64(p.kb)/1024)
	}
}

// renderSoak writes the soak's markdown section (without the markers).
func (r *report) renderSoak() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	s, m := r.soak, r.mach
	w("### Soak of %s\n\n", m.date)
	w("- Commit `%s`, %s; %d × %s, %.1f GiB. Load average before: %s; after: %s.\n", m.commit, m.goVer, m.cpus, m.model,
		m.memGiB, m.loadavg, r.loadEnd)
	w("- %s at %.0f req/s offered (open loop) through the gateway: 4 in 5 non-streamed (instant model), 1 in 5 a 20-token paced stream.\n", s.d, s.rate)
	w("- %d requests answered, %d errors%s. Sampled every %s; slopes are least-squares fits.\n\n", s.r.ok, s.r.errs, errNote(s.r.firstErr), soakEvery)
	w("| target | measured | met |\n|---|---|---|\n")
	for _, se := range s.series {
		if (se.name == "VmRSS data plane" || se.name == "VmRSS control plane") && len(se.v) > 0 {
			grow := se.slope(s.d/2) * (s.d / 2).Minutes()
			flat := grow < max(2, 0.05*last(se))
			peak := 0.0
			for _, v := range se.v {
				peak = max(peak, v)
			}
			w("| flat RSS: %s | %+.1f MiB over the 2nd half (%.1f → %.1f MiB overall, peak %.1f MiB) | %s |\n",
				strings.TrimPrefix(se.name, "VmRSS "), grow, se.v[0], last(se), peak, yesNo(flat))
		}
	}
	if o := s.find("machine CPU used by other processes"); o != nil && len(o.v) > 0 {
		sum, mx := 0.0, 0.0
		for _, v := range o.v {
			sum += v
			mx = max(mx, v)
		}
		w("\nOther processes (other people's builds and tests) used %.0f %% of the machine on average and up to %.0f %% in one 10 s interval.\n",
			sum/float64(len(o.v)), mx)
	}
	w("\n| quantity | first | last | max | slope/min (all) | slope/min (2nd half) | 3 s after the load |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, se := range s.series {
		if len(se.v) == 0 {
			continue
		}
		mx := math.Inf(-1)
		for _, v := range se.v {
			mx = max(mx, v)
		}
		unit := ""
		if se.unit != "" {
			unit = " " + se.unit
		}
		w("| %s%s | %.1f | %.1f | %.1f | %+.2f | %+.2f | %.1f |\n", se.name, unit, se.v[0], se.v[len(se.v)-1], mx,
			se.slope(0), se.slope(s.d/2), s.after[se.name])
	}
	s.renderMinutes(w)
	return b.String()
}

// renderMinutes writes one row per minute of the main series.
func (s *soakResult) renderMinutes(w func(string, ...any)) {
	cols := []string{"VmRSS data plane", "VmRSS control plane", "goroutines data plane", "goroutines control plane",
		"heap in use data plane", "heap in use control plane", "machine CPU used by other processes"}
	heads := []string{"DP RSS MiB", "CP RSS MiB", "DP goroutines", "CP goroutines", "DP heap MiB", "CP heap MiB", "other load %"}
	w("\nPer minute:\n\n| minute | %s |\n|---:|%s\n", strings.Join(heads, " | "), strings.Repeat("---:|", len(heads)))
	ref := s.find(cols[0])
	if ref == nil {
		return
	}
	next := time.Duration(0)
	for _, at := range ref.at {
		if at < next {
			continue
		}
		next = at.Truncate(time.Minute) + time.Minute
		w("| %.0f |", at.Minutes())
		for _, c := range cols {
			if v, ok := s.find(c).valueAt(at); ok {
				w(" %.1f |", v)
			} else {
				w(" – |")
			}
		}
		w("\n")
	}
}

// find returns the series named name, or nil.
func (s *soakResult) find(name string) *series {
	for _, se := range s.series {
		if se.name == name {
			return se
		}
	}
	return nil
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

func errNote(first string) string {
	if first == "" {
		return ""
	}
	return " (first: " + first + ")"
}

// targets checks the targets against the figures.
func (r *report) targets() [][3]string {
	var out [][3]string
	yes := yesNo
	for _, l := range r.latency {
		if l.model == modelVLLM {
			// A difference of two tails is noisy: a direct outlier can make it small.
			// The added p50 must fit the budget too before the target counts as met.
			added, added50 := l.gateway.pct(99)-l.direct.pct(99), l.gateway.pct(50)-l.direct.pct(50)
			out = append(out, [3]string{"added p50 ≤ 250 µs and p99 ≤ 1 ms at one concurrent request", fmt.Sprintf("p50 %s ms, p99 %s ms",
				signed(added50), signed(added)), yes(added <= time.Millisecond && added50 <= 250*time.Microsecond)})
		}
	}
	best := 0.0
	for _, l := range r.sat {
		if l.gateway {
			best = max(best, l.m.rps())
		}
	}
	if len(r.sat) > 0 { // a partial run without the saturation phase has no figure
		out = append(out, [3]string{"≥ 5,000 non-streamed req/s through one DP + one CP", fmt.Sprintf("%.0f req/s (best closed loop)", best), yes(best >= 5000)})
	}
	var short, long float64
	for _, s := range r.streams {
		if s.gateway && s.tokens == r.p.shortTokens {
			short = s.mallocsPerChunk
		}
		if s.gateway && s.tokens == r.p.longTokens {
			long = s.mallocsPerChunk
		}
	}
	if short > 0 && long > 0 {
		out = append(out, [3]string{"no per-chunk allocation growth while streaming",
			fmt.Sprintf("%.1f mallocs/chunk at %d tokens/stream, %.1f at %d", short, r.p.shortTokens, long, r.p.longTokens),
			yes(long <= short*1.1)})
	}
	if d, g, ok := r.streamPair(); ok {
		ttft := percentile(g.r.ttft, 99) - percentile(d.r.ttft, 99)
		gap := percentile(g.r.gap, 99) - percentile(d.r.gap, 99)
		out = append(out, [3]string{fmt.Sprintf("%d paced streams: added TTFT p99 ≤ 5 ms, inter-chunk gap p99 ≤ 2 ms", r.p.streams),
			fmt.Sprintf("TTFT p99 %s ms, gap p99 %s ms", signed(ttft), signed(gap)), yes(ttft <= 5*time.Millisecond && gap <= 2*time.Millisecond)})
	}
	out = append(out, [3]string{"flat RSS in a soak of ≥ 10 minutes", "see the soak section below", "–"})
	return out
}

// writeSection puts section between the begin and end markers of the file at
// path, creating the file, or appending the markers, when they are missing.
func writeSection(path, begin, end, section string) error {
	block := begin + "\n" + section + end
	old, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return os.WriteFile(path, []byte("# Benchmarks\n\n"+block+"\n"), 0o644)
	case err != nil:
		return err
	}
	text := string(old)
	i, j := strings.Index(text, begin), strings.Index(text, end)
	if i < 0 || j < i {
		return os.WriteFile(path, []byte(strings.TrimRight(text, "\n")+"\n\n"+block+"\n"), 0o644)
	}
	return os.WriteFile(path, []byte(text[:i]+block+text[j+len(end):]), 0o644)
}
