package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"
)

// streamResult is what a streaming run measured.
type streamResult struct {
	streams, errs int
	chunks        int64           // content chunks received
	ttft, gap     []time.Duration // sorted
	firstErr      string
	elapsed       time.Duration
}

// streamTally merges the workers' samples.
type streamTally struct {
	mu sync.Mutex
	r  streamResult
}

func (t *streamTally) add(w *streamWorker) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.r.streams += w.streams
	t.r.errs += w.errs
	t.r.chunks += w.chunks
	t.r.ttft = append(t.r.ttft, w.ttft...)
	t.r.gap = append(t.r.gap, w.gap...)
	if t.r.firstErr == "" {
		t.r.firstErr = w.firstErr
	}
}

type streamWorker struct {
	streams, errs int
	chunks        int64
	ttft, gap     []time.Duration
	firstErr      string
	br            *bufio.Reader
}

// streamLoad keeps n streams open for d: each of n workers starts its first stream
// at a staggered offset within stagger, then runs streams back to back.
func streamLoad(ctx context.Context, c *http.Client, r reqSpec, n int, d, stagger time.Duration) streamResult {
	var t streamTally
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(d)
	for i := range n {
		r := r.forWorker(i)
		wg.Go(func() {
			w := &streamWorker{br: bufio.NewReaderSize(nil, 16<<10)}
			select {
			case <-time.After(time.Duration(i) * stagger / time.Duration(n)):
			case <-ctx.Done():
			}
			for time.Now().Before(end) && ctx.Err() == nil {
				if err := w.one(ctx, c, r); err != nil {
					w.errs++
					if w.firstErr == "" {
						w.firstErr = err.Error()
					}
				}
			}
			t.add(w)
		})
	}
	wg.Wait()
	t.r.elapsed = time.Since(start)
	slices.Sort(t.r.ttft)
	slices.Sort(t.r.gap)
	return t.r
}

// one runs one stream, recording the time to its first content chunk and the gaps
// between its content chunks.
func (w *streamWorker) one(ctx context.Context, c *http.Client, r reqSpec) error {
	req, err := r.request(ctx)
	if err != nil {
		return err
	}
	began := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	w.br.Reset(resp.Body)
	var last time.Time
	var ttft time.Duration
	var gaps []time.Duration
	done := false
	for {
		line, err := w.br.ReadSlice('\n')
		if len(line) > 0 && bytes.HasPrefix(line, []byte("data: ")) {
			if bytes.HasPrefix(line, []byte("data: [DONE]")) {
				done = true
			} else if hasContent(line) {
				now := time.Now()
				if last.IsZero() {
					ttft = now.Sub(began)
				} else {
					gaps = append(gaps, now.Sub(last))
				}
				last = now
				w.chunks++
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if !done || last.IsZero() {
		return fmt.Errorf("stream ended without [DONE] or content")
	}
	w.streams++
	w.ttft = append(w.ttft, ttft)
	w.gap = append(w.gap, gaps...)
	return nil
}

// hasContent reports whether an SSE data line carries a non-empty "content" string.
func hasContent(line []byte) bool {
	for {
		i := bytes.Index(line, []byte(`"content":`))
		if i < 0 {
			return false
		}
		rest := bytes.TrimLeft(line[i+len(`"content":`):], " ")
		if len(rest) >= 2 && rest[0] == '"' && rest[1] != '"' {
			return true
		}
		line = rest
	}
}
