package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPercentile(t *testing.T) {
	t.Parallel()
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one", ms(7), 99, 7 * time.Millisecond},
		{"median of four is the second (nearest rank)", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p99 of 1..100", ms(hundred...), 99, 99 * time.Millisecond},
		{"p100 is the max", ms(hundred...), 100, 100 * time.Millisecond},
		{"p0 is the min", ms(hundred...), 0, time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, percentile(tt.sorted, tt.p))
		})
	}
}

func TestHasContent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		line string
		want bool
	}{
		{`data: {"choices":[{"delta":{"content":"sim"}}]}`, true},
		{`data: {"choices":[{"delta":{"content": "sim"}}]}`, true},
		{`data: {"choices":[{"delta":{"role":"assistant","content":""}}]}`, false},
		{`data: {"choices":[],"usage":{"completion_tokens":3}}`, false},
		{`data: {"choices":[{"delta":{"content":null}}]}`, false},
		{`data: {"a":{"content":""},"b":{"content":"x"}}`, true},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, hasContent([]byte(tt.line)), tt.line)
	}
}

func TestWriteSection(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "bench.md")

	require.NoError(t, writeSection(file, beginMarker, endMarker, "first\n"))
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	require.Equal(t, "# Benchmarks\n\n"+beginMarker+"\nfirst\n"+endMarker+"\n", string(b))

	// Hand-written text around the markers survives a rewrite.
	hand := "# Benchmarks\n\nintro\n\n" + beginMarker + "\nold\n" + endMarker + "\n\n## What bounds it\n"
	require.NoError(t, os.WriteFile(file, []byte(hand), 0o644))
	require.NoError(t, writeSection(file, beginMarker, endMarker, "new\n"))
	b, err = os.ReadFile(file)
	require.NoError(t, err)
	require.Equal(t, "# Benchmarks\n\nintro\n\n"+beginMarker+"\nnew\n"+endMarker+"\n\n## What bounds it\n", string(b))

	// A second pair of markers is appended once, then replaced in place.
	require.NoError(t, writeSection(file, soakBeginMarker, soakEndMarker, "soak 1\n"))
	require.NoError(t, writeSection(file, soakBeginMarker, soakEndMarker, "soak 2\n"))
	b, err = os.ReadFile(file)
	require.NoError(t, err)
	require.Equal(t, 1, strings.Count(string(b), soakBeginMarker))
	require.Contains(t, string(b), soakBeginMarker+"\nsoak 2\n"+soakEndMarker)
	require.Contains(t, string(b), beginMarker+"\nnew\n"+endMarker)
}

func TestSeriesSlope(t *testing.T) {
	t.Parallel()
	var s series
	for i := range 10 {
		// Flat for the first half, then growing by 2 per minute.
		v := 100.0
		if i >= 5 {
			v = 100 + 2*float64(i-5)
		}
		s.add(time.Duration(i)*time.Minute, v)
	}
	require.InDelta(t, 2.0, s.slope(5*time.Minute), 1e-9)
	require.InDelta(t, 0.0, (&series{}).slope(0), 1e-9, "no samples: no slope")
}

func TestProcReaders(t *testing.T) {
	t.Parallel()
	_, err := cpuTime(os.Getpid())
	require.NoError(t, err)
	rss, err := memKB(os.Getpid(), "VmRSS")
	require.NoError(t, err)
	require.Positive(t, rss)
	hwm, err := memKB(os.Getpid(), "VmHWM")
	require.NoError(t, err)
	require.GreaterOrEqual(t, hwm, rss)
	_, err = memKB(os.Getpid(), "NoSuchField")
	require.Error(t, err)
}

func TestScrape(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "# HELP go_goroutines x\ngo_goroutines 42\ngo_goroutines_other 1\ngo_memstats_mallocs_total 1.5e+06\n")
	}))
	t.Cleanup(srv.Close)
	v, err := scrape(context.Background(), srv.URL, "go_goroutines", "go_memstats_mallocs_total")
	require.NoError(t, err)
	require.Equal(t, map[string]float64{"go_goroutines": 42, "go_memstats_mallocs_total": 1.5e6}, v)
	_, err = scrape(context.Background(), srv.URL, "absent")
	require.Error(t, err)
}

func TestLoadShapes(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer k" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, `{"ok":true}`)
	}))
	t.Cleanup(srv.Close)
	ctx := context.Background()
	c := newClient(64)
	good := reqSpec{url: srv.URL, body: []byte(`{}`), auth: "k"}

	r := sequential(ctx, c, good, 20)
	require.Equal(t, 20, r.ok)
	require.Zero(t, r.errs)

	r = closedLoop(ctx, c, good, 4, 100*time.Millisecond)
	require.Positive(t, r.ok)
	require.Len(t, r.lat, r.ok)

	// 200 req/s for 250 ms is 50 scheduled requests, every one answered.
	r = openLoop(ctx, c, func(int) reqSpec { return good }, 200, 250*time.Millisecond, 8)
	require.Equal(t, 50, r.ok)

	bad := reqSpec{url: srv.URL, body: []byte(`{}`)}
	r = sequential(ctx, c, bad, 3)
	require.Equal(t, 3, r.errs)
	require.Equal(t, "status 401", r.firstErr)
}

func TestStreamLoad(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fl := w.(http.Flusher)
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n")
		for i := range 3 {
			time.Sleep(5 * time.Millisecond)
			fmt.Fprintf(w, "data: {\"choices\":[{\"delta\":{\"content\":\"t%d\"}}]}\n\n", i)
			fl.Flush()
		}
		fmt.Fprint(w, "data: {\"choices\":[],\"usage\":{}}\n\ndata: [DONE]\n\n")
	}))
	t.Cleanup(srv.Close)
	r := streamLoad(context.Background(), newClient(8), reqSpec{url: srv.URL, body: []byte(`{}`)}, 4, 100*time.Millisecond, 10*time.Millisecond)
	require.Zero(t, r.errs, r.firstErr)
	require.Positive(t, r.streams)
	require.Equal(t, int64(3*r.streams), r.chunks)
	require.Len(t, r.ttft, r.streams)
	require.Len(t, r.gap, 2*r.streams)
	// The gaps are the server's 5 ms pauses; on a loaded machine the client
	// may read two chunks at once, so only the longest gap must show one.
	require.GreaterOrEqual(t, slices.Max(r.gap), 4*time.Millisecond)
}
