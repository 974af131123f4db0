package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// profiler collects profiles from the data plane and control plane while a load
// runs; the binaries serve net/http/pprof only when built with the overlay.
type profiler struct {
	wg    sync.WaitGroup
	mu    sync.Mutex
	files []string
	errs  []string
}

// profiled is one profile's summary for the report.
type profiled struct {
	title string
	file  string
	top   string
}

// startProfiles starts a CPU profile of every profiled process (data plane,
// control plane, simulators) covering most of the next d.
func startProfiles(ctx context.Context, s *stack, dir, tag string, d time.Duration) *profiler {
	secs := max(int((d-time.Second)/time.Second), 1)
	p := &profiler{}
	for _, name := range slices.Sorted(maps.Keys(s.pprof)) {
		base := s.pprof[name]
		file := filepath.Join(dir, fmt.Sprintf("%s-%s.cpu.pprof", name, tag))
		p.wg.Go(func() { p.fetch(ctx, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, secs), file) })
	}
	return p
}

// startAllocProfile starts a delta allocation profile of the data plane over d.
func startAllocProfile(ctx context.Context, s *stack, dir, tag string, d time.Duration) *profiler {
	secs := max(int((d-time.Second)/time.Second), 1)
	p := &profiler{}
	if base, ok := s.pprof["dataplane"]; ok {
		file := filepath.Join(dir, fmt.Sprintf("dataplane-%s.allocs.pprof", tag))
		p.wg.Go(func() { p.fetch(ctx, fmt.Sprintf("%s/debug/pprof/allocs?seconds=%d", base, secs), file) })
	}
	return p
}

func (p *profiler) fetch(ctx context.Context, url, file string) {
	err := func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			return fmt.Errorf("status %d: %s", resp.StatusCode, b)
		}
		f, err := os.Create(file)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, resp.Body); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}()
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.errs = append(p.errs, fmt.Sprintf("profile %s: %v", url, err))
		return
	}
	p.files = append(p.files, file)
}

// wait waits for the profiles and summarises each with go tool pprof -top.
func (p *profiler) wait(ctx context.Context) []profiled {
	p.wg.Wait()
	var out []profiled
	for _, e := range p.errs {
		out = append(out, profiled{title: "error", top: e})
	}
	for _, f := range p.files {
		args := []string{"tool", "pprof", "-top", "-nodecount=25"}
		if strings.HasSuffix(f, ".allocs.pprof") {
			args = append(args, "-sample_index=alloc_space")
		}
		cmd := exec.CommandContext(ctx, "go", append(args, f)...)
		b, err := cmd.CombinedOutput()
		top := string(b)
		if err != nil {
			top = fmt.Sprintf("go tool pprof: %v\n%s", err, b)
		}
		out = append(out, profiled{title: strings.TrimSuffix(filepath.Base(f), ".pprof"), file: f, top: top})
	}
	return out
}
