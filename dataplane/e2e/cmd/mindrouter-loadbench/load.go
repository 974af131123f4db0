package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// reqSpec is one kind of request: where it goes and what it carries.
type reqSpec struct {
	url  string
	body []byte
	auth string // bearer token; empty sends none
	// slow is the latency above which the request counts as slow in the stall
	// log; 0 means slowLatency.
	slow time.Duration
	// keys, when set, are the bearer tokens that workers take in turn (see
	// forWorker), so that the load is spread over several users.
	keys []string
}

// forWorker returns the request as worker (or schedule slot) i sends it: with
// the i-th key, in turn, when the request has keys.
func (r reqSpec) forWorker(i int) reqSpec {
	if len(r.keys) > 0 {
		r.auth = r.keys[i%len(r.keys)]
	}
	return r
}

// openAIBody is a small OpenAI chat completion request.
func openAIBody(model string, stream bool, maxTokens int) []byte {
	s := ""
	if stream {
		s = `,"stream":true,"stream_options":{"include_usage":true}`
	}
	return fmt.Appendf(nil, `{"model":%q,"messages":[{"role":"user","content":"Say something short."}],"max_tokens":%d%s}`,
		model, maxTokens, s)
}

// gatewayChat is an OpenAI chat completion through the data plane, with the
// benchmark users' keys taken in turn (the first key when sent alone).
func gatewayChat(s *stack, model string, stream bool, maxTokens int) reqSpec {
	r := reqSpec{url: s.dpURL + "/v1/chat/completions", body: openAIBody(model, stream, maxTokens), auth: s.adminKey, keys: s.keys}
	return r.forWorker(0)
}

// directChat is the same request sent straight to the model's simulator, in the
// simulator's own dialect: vLLM's OpenAI server takes the same body, Ollama takes
// /api/chat with num_predict.
func directChat(s *stack, model string, stream bool, maxTokens int) reqSpec {
	base := s.sims[model].url
	if model == modelOllama {
		body := fmt.Appendf(nil, `{"model":%q,"messages":[{"role":"user","content":"Say something short."}],"stream":%t,"options":{"num_predict":%d}}`,
			model, stream, maxTokens)
		return reqSpec{url: base + "/api/chat", body: body}
	}
	return reqSpec{url: base + "/v1/chat/completions", body: openAIBody(model, stream, maxTokens)}
}

// request builds the HTTP request for one send.
func (r reqSpec) request(ctx context.Context) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(r.body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if r.auth != "" {
		req.Header.Set("Authorization", "Bearer "+r.auth)
	}
	return req, nil
}

// once sends the request, reads the whole answer and returns its status.
func (r reqSpec) once(ctx context.Context, c *http.Client) (int, error) {
	req, err := r.request(ctx)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, err
}

// newClient returns a keep-alive client with room for conns idle connections.
func newClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}}
}

// result is what one load run measured.
type result struct {
	ok, errs int
	lat      []time.Duration // of successful requests, sorted
	elapsed  time.Duration
	firstErr string
	slow     []time.Time // intended send times of requests slower than slowLatency
	start    time.Time   // when the schedule began (open loop)
	// lagged counts open-loop requests sent more than lagLimit after their
	// intended time, and maxLag is the worst: the generator's own delay,
	// which the latencies include (they are measured from the intended time).
	lagged int
	maxLag time.Duration
}

// lagLimit is when a request counts as sent late by the generator.
const lagLimit = 10 * time.Millisecond

// lag describes the generator's sending delay, for the progress log.
func (r result) lag() string {
	return fmt.Sprintf("sent >%s late: %d, worst %s", lagLimit, r.lagged, r.maxLag.Round(time.Millisecond))
}

// stalls counts the slow requests by second since start, for the progress log.
func (r result) stalls() string {
	if len(r.slow) == 0 {
		return "none"
	}
	by := map[int]int{}
	for _, at := range r.slow {
		by[int(at.Sub(r.start)/time.Second)]++
	}
	secs := slices.Sorted(maps.Keys(by))
	var b strings.Builder
	for _, s := range secs {
		fmt.Fprintf(&b, " %ds:%d", s, by[s])
	}
	return strings.TrimSpace(b.String())
}

// rps is the rate of successful requests.
func (r result) rps() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.ok) / r.elapsed.Seconds()
}

// pct returns the p-th percentile (nearest rank) of the successful latencies.
func (r result) pct(p float64) time.Duration { return percentile(r.lat, p) }

// percentile returns the p-th percentile (nearest rank) of sorted.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// tally merges the workers' samples; recordings are per worker to stay lock-free.
type tally struct {
	mu       sync.Mutex
	slow     []time.Time
	start    time.Time
	lat      []time.Duration
	ok, errs int
	firstErr string
	lagged   int
	maxLag   time.Duration
}

func (t *tally) add(lat []time.Duration, errs int, firstErr string) {
	t.addWorker(&worker{lat: lat, errs: errs, firstErr: firstErr})
}

func (t *tally) addWorker(w *worker) {
	lat, errs, firstErr := w.lat, w.errs, w.firstErr
	t.mu.Lock()
	defer t.mu.Unlock()
	t.slow = append(t.slow, w.slow...)
	t.lat = append(t.lat, lat...)
	t.ok += len(lat)
	t.errs += errs
	t.lagged += w.lagged
	t.maxLag = max(t.maxLag, w.maxLag)
	if t.firstErr == "" {
		t.firstErr = firstErr
	}
}

func (t *tally) result(elapsed time.Duration) result {
	slices.Sort(t.lat)
	return result{ok: t.ok, errs: t.errs, lat: t.lat, elapsed: elapsed, firstErr: t.firstErr, slow: t.slow, start: t.start,
		lagged: t.lagged, maxLag: t.maxLag}
}

// worker records one goroutine's outcomes.
type worker struct {
	lat      []time.Duration
	slow     []time.Time // intended send times of slow requests
	errs     int
	firstErr string
	lagged   int
	maxLag   time.Duration
}

func (w *worker) do(ctx context.Context, c *http.Client, r reqSpec, from time.Time) {
	if lag := time.Since(from); lag > lagLimit {
		w.lagged++
		w.maxLag = max(w.maxLag, lag)
	}
	status, err := r.once(ctx, c)
	switch {
	case err != nil:
		w.fail(err.Error())
	case status != http.StatusOK:
		w.fail(fmt.Sprintf("status %d", status))
	default:
		d := time.Since(from)
		w.lat = append(w.lat, d)
		limit := r.slow
		if limit == 0 {
			limit = slowLatency
		}
		if d > limit && len(w.slow) < 10000 {
			w.slow = append(w.slow, from)
		}
	}
}

// slowLatency marks a request as slow for the stall histogram in the progress log.
const slowLatency = 50 * time.Millisecond

func (w *worker) fail(msg string) {
	w.errs++
	if w.firstErr == "" {
		w.firstErr = msg
	}
}

// sequential sends n requests one after the other (one concurrent request).
func sequential(ctx context.Context, c *http.Client, r reqSpec, n int) result {
	var w worker
	start := time.Now()
	for range n {
		w.do(ctx, c, r, time.Now())
	}
	var t tally
	t.add(w.lat, w.errs, w.firstErr)
	return t.result(time.Since(start))
}

// closedLoop runs workers that each send back to back for d.
func closedLoop(ctx context.Context, c *http.Client, r reqSpec, workers int, d time.Duration) result {
	var t tally
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(d)
	for i := range workers {
		r := r.forWorker(i)
		wg.Go(func() {
			var w worker
			for time.Now().Before(end) && ctx.Err() == nil {
				w.do(ctx, c, r, time.Now())
			}
			t.addWorker(&w)
		})
	}
	wg.Wait()
	return t.result(time.Since(start))
}

// openLoop offers rate requests per second for d on a fixed schedule; pick(i)
// chooses the i-th request. Latency is
// measured from each request's intended send time, so a slow answer delays
// nothing else and queueing in the generator counts against the system (no
// coordinated omission). Up to maxInFlight requests are outstanding; requests
// still unanswered grace after the schedule ends count as errors.
func openLoop(ctx context.Context, c *http.Client, pick func(int) reqSpec, rate float64, d time.Duration, maxInFlight int) result {
	total := int(rate * d.Seconds())
	interval := time.Duration(float64(time.Second) / rate)
	due := make(chan slot, total) // never blocks the schedule
	ctx, cancel := context.WithTimeout(ctx, d+10*time.Second)
	defer cancel()
	var t tally
	var wg sync.WaitGroup
	for range maxInFlight {
		wg.Go(func() {
			var w worker
			for sl := range due {
				if ctx.Err() != nil {
					w.fail("not sent before the deadline")
					continue
				}
				w.do(ctx, c, pick(sl.i).forWorker(sl.i), sl.at)
			}
			t.addWorker(&w)
		})
	}
	start := time.Now()
	t.start = start
	for i := range total {
		at := start.Add(time.Duration(i) * interval)
		if wait := time.Until(at); wait > 0 {
			time.Sleep(wait)
		}
		due <- slot{i: i, at: at}
	}
	close(due)
	wg.Wait()
	return t.result(time.Since(start))
}

// slot is one scheduled request: its index and intended send time.
type slot struct {
	i  int
	at time.Time
}
