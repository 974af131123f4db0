package main

import (
	"context"
	"runtime"
	"sync"
	"time"
)

// argonMetric counts the control plane's Argon2id key verifications (cache misses).
const argonMetric = "mindrouter_identity_argon2_verifications_total"

// soakEvery is the soak's sampling interval.
const soakEvery = 10 * time.Second

// series is one quantity sampled during the soak.
type series struct {
	name string
	unit string
	at   []time.Duration
	v    []float64
}

func (s *series) add(at time.Duration, v float64) {
	s.at = append(s.at, at)
	s.v = append(s.v, v)
}

// slope fits a least-squares line to the samples taken at or after from and
// returns its slope per minute.
func (s *series) slope(from time.Duration) float64 {
	var n, sx, sy, sxx, sxy float64
	for i, at := range s.at {
		if at < from {
			continue
		}
		x := at.Minutes()
		n++
		sx += x
		sy += s.v[i]
		sxx += x * x
		sxy += x * s.v[i]
	}
	den := n*sxx - sx*sx
	if n < 2 || den == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / den
}

// soakResult is the soak's outcome.
type soakResult struct {
	d      time.Duration
	rate   float64
	r      result
	series []*series
	after  map[string]float64 // by series name, sampled after the load stopped
}

// soak offers a constant mixed load through the gateway for p.soak: four in five
// requests non-streamed (instant model), one in five a short paced stream. Every
// soakEvery it samples the resident set of each process and the data plane's and
// control plane's goroutines and in-use heap.
func (b *bench) soak(ctx context.Context) soakResult {
	plain := gatewayChat(b.s, modelVLLM, false, 16)
	streamed := gatewayChat(b.s, modelPaced, true, 20)
	streamed.slow = pacedTTFT + 20*pacedITL + slowLatency
	pick := func(i int) reqSpec {
		if i%5 == 4 {
			return streamed
		}
		return plain
	}
	rss := []namedPID{}
	for _, p := range b.s.procs() {
		if p.name != "sim (instant Ollama)" && p.name != "load generator" {
			rss = append(rss, p)
		}
	}
	var all []*series
	rssSeries := map[string]*series{}
	for _, p := range rss {
		s := &series{name: "VmRSS " + p.name, unit: "MiB"}
		rssSeries[p.name] = s
		all = append(all, s)
	}
	type scraped struct {
		url, who  string
		gor, heap *series
	}
	targets := []scraped{
		{url: b.s.dpURL + "/metrics", who: "data plane"},
		{url: b.s.cpREST + "/metrics", who: "control plane"},
	}
	argon := &series{name: "Argon2id verifications (cumulative) control plane"}
	for i := range targets {
		targets[i].gor = &series{name: "goroutines " + targets[i].who}
		targets[i].heap = &series{name: "heap in use " + targets[i].who, unit: "MiB"}
		all = append(all, targets[i].gor, targets[i].heap)
	}
	all = append(all, argon)

	// The other processes' share of the machine since the previous sample shows
	// when someone else's work disturbed the soak.
	other := &series{name: "machine CPU used by other processes", unit: "%"}
	all = append(all, other)
	ps := b.s.procs()
	lastBusy, lastOurs, lastAt := machineBusy(), sumCPU(snapCPU(ps)), time.Now()

	start := time.Now()
	// sample reads every series' current value, keyed by the series.
	sample := func() map[*series]float64 {
		v := map[*series]float64{}
		busy, ours, now := machineBusy(), sumCPU(snapCPU(ps)), time.Now()
		if wall := now.Sub(lastAt); wall > time.Second {
			v[other] = 100 * max(float64(busy-lastBusy-(ours-lastOurs)), 0) / float64(wall) / float64(runtime.NumCPU())
			lastBusy, lastOurs, lastAt = busy, ours, now
		}
		for _, p := range rss {
			if kb, err := memKB(p.pid, "VmRSS"); err == nil {
				v[rssSeries[p.name]] = float64(kb) / 1024
			}
		}
		for _, t := range targets {
			m, err := scrape(ctx, t.url, "go_goroutines", "go_memstats_heap_inuse_bytes")
			if err != nil {
				b.logf("soak: %v", err)
				continue
			}
			v[t.gor] = m["go_goroutines"]
			v[t.heap] = m["go_memstats_heap_inuse_bytes"] / (1 << 20)
		}
		if m, err := scrape(ctx, b.s.cpREST+"/metrics", argonMetric); err == nil {
			v[argon] = m[argonMetric]
		}
		return v
	}
	record := func() {
		at := time.Since(start)
		for s, x := range sample() {
			s.add(at, x)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(soakEvery)
		defer tick.Stop()
		record()
		for n := 1; ; n++ {
			select {
			case <-stop:
				return
			case <-tick.C:
				record()
				if n%6 == 0 {
					b.logf("soak: %s of %s, data plane RSS %.1f MiB, goroutines %.0f", time.Since(start).Round(time.Second),
						b.p.soak, last(rssSeries["data plane"]), last(targets[0].gor))
				}
			}
		}
	})
	r := openLoop(ctx, b.gw, pick, b.p.soakRate, b.p.soak, min(1024, b.p.maxOutstanding()))
	b.logf("soak: requests slower than %s by second of intended send (streams: %s over their paced length): %s", slowLatency, slowLatency, r.stalls())
	close(stop)
	wg.Wait()
	// What stays behind once the load has gone and the last streams have ended.
	select {
	case <-ctx.Done():
	case <-time.After(3 * time.Second):
	}
	after := map[string]float64{}
	for s, x := range sample() {
		after[s.name] = x
	}
	return soakResult{d: b.p.soak, rate: b.p.soakRate, r: r, series: all, after: after}
}

// valueAt returns the sample taken at at (every series of one sample shares it).
func (s *series) valueAt(at time.Duration) (float64, bool) {
	if s == nil {
		return 0, false
	}
	for i, a := range s.at {
		if a == at {
			return s.v[i], true
		}
	}
	return 0, false
}

func sumCPU(s cpuSnap) time.Duration {
	var t time.Duration
	for _, d := range s {
		t += d
	}
	return t
}

func last(s *series) float64 {
	if s == nil || len(s.v) == 0 {
		return 0
	}
	return s.v[len(s.v)-1]
}
