package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/e2e/internal/cluster"
	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
)

// The fairness rig: a real control plane and data plane in front of one simulated
// vLLM backend with a fixed number of slots, users created through the admin API
// with their own keys, and plain HTTP clients that record every answer.

// fairRig is a running cluster with one backend of slots concurrent requests.
type fairRig struct {
	t      *testing.T
	c      *cluster.Cluster
	model  string
	http   *http.Client
	groups map[string]string // group name -> id

	mu      sync.Mutex
	answers []answer
}

// answer is one completed request as its client saw it.
type answer struct {
	user string
	sent time.Time
	// first is when the answer began after the queue: the headers of a
	// non-streamed answer, the first data event of a stream (whose headers may
	// come early, while it waits).
	first    time.Time
	done     time.Time
	tokens   int64 // prompt + completion tokens reported in usage
	queueHdr string
}

// startFairRig starts the simulator with cfg (one model, vLLM dialect), a cluster
// in front of it with the extra control-plane flags, and limits the backend to
// slots concurrent requests.
func startFairRig(t *testing.T, cfg enginesim.Config, slots int, cpArgs ...string) *fairRig {
	t.Helper()
	cfg.Engine = enginesim.EngineVLLM
	model := cfg.Models[0].Name
	_, url := startSim(t, cfg)
	c := cluster.Start(t, cluster.Options{
		Backends:         []cluster.Backend{{Name: "sim", Engine: "vllm", URL: url}},
		ControlPlaneArgs: cpArgs,
	})
	r := &fairRig{t: t, c: c, model: model, groups: map[string]string{},
		http: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var backends []backendJSON
	r.admin(ctx, http.MethodGet, "/api/admin/backends", nil, &backends)
	require.Len(t, backends, 1)
	r.admin(ctx, http.MethodPatch, "/api/admin/backends/"+backends[0].ID, map[string]any{"max_concurrent": slots}, nil)
	var groups []struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	r.admin(ctx, http.MethodGet, "/api/admin/groups", nil, &groups)
	for _, g := range groups {
		r.groups[g.Name] = g.ID
	}
	// Wait until the model is discovered, so that the first requests are not refused.
	for deadline := time.Now().Add(20 * time.Second); ; {
		var ms json.RawMessage
		r.admin(ctx, http.MethodGet, "/api/admin/models", nil, &ms)
		if bytes.Contains(ms, []byte(`"`+model+`"`)) {
			break
		}
		require.True(t, time.Now().Before(deadline), "model %s not discovered: %s", model, ms)
		time.Sleep(50 * time.Millisecond)
	}
	return r
}

func (r *fairRig) admin(ctx context.Context, method, path string, body, out any) {
	r.t.Helper()
	status, err := r.c.AdminJSON(ctx, r.c.RESTURL, method, path, body, out)
	require.NoError(r.t, err)
	require.Equal(r.t, http.StatusOK, status, "%s %s", method, path)
}

// fairUser is a user with an inference key.
type fairUser struct {
	name   string
	id     string
	key    string
	weight int
}

// user creates a user in group with no rate limit and no budget, and with weight
// as its weight override when weight > 0.
func (r *fairRig) user(name, group string, weight int) fairUser {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	gid, ok := r.groups[group]
	require.True(r.t, ok, "group %s", group)
	var created struct {
		ID string `json:"id"`
	}
	r.admin(ctx, http.MethodPost, "/api/admin/users", map[string]any{
		"username": name, "email": name + "@example.edu", "password": "correct horse battery", "group_id": gid,
	}, &created)
	patch := map[string]any{"rpm_limit": 0, "token_budget": 0}
	if weight > 0 {
		patch["weight_override"] = weight
	}
	r.admin(ctx, http.MethodPatch, "/api/admin/users/"+created.ID, patch, nil)
	var key struct {
		FullKey string `json:"full_key"`
	}
	r.admin(ctx, http.MethodPost, "/api/admin/users/"+created.ID+"/api-keys", map[string]any{"name": "fair"}, &key)
	require.NotEmpty(r.t, key.FullKey)
	return fairUser{name: name, id: created.ID, key: key.FullKey, weight: weight}
}

// chat sends one chat completion of u asking for maxTokens tokens (0: none
// asked), streamed or not, and records the answer. It returns false when the
// request failed (the context ended, or an error answer).
func (r *fairRig) chat(ctx context.Context, u fairUser, maxTokens int, stream bool) bool {
	body := map[string]any{"model": r.model, "messages": []map[string]string{{"role": "user", "content": "tell me a story"}}}
	if maxTokens > 0 {
		body["max_tokens"] = maxTokens
	}
	if stream {
		body["stream"] = true
		body["stream_options"] = map[string]any{"include_usage": true}
	}
	raw, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.c.DataPlaneURL+"/v1/chat/completions", bytes.NewReader(raw))
	if err != nil {
		return false
	}
	req.Header.Set("Authorization", "Bearer "+u.key)
	req.Header.Set("Content-Type", "application/json")
	a := answer{user: u.name, sent: time.Now()}
	resp, err := r.http.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	a.first = time.Now()
	a.queueHdr = resp.Header.Get("X-Mindrouter-Queue-Position")
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		if ctx.Err() == nil && resp.StatusCode != http.StatusTooManyRequests {
			r.t.Errorf("%s: status %d: %s", u.name, resp.StatusCode, b)
		}
		return false
	}
	var usage struct {
		Usage *struct {
			PromptTokens     int64 `json:"prompt_tokens"`
			CompletionTokens int64 `json:"completion_tokens"`
		} `json:"usage"`
	}
	if stream {
		sc := bufio.NewScanner(resp.Body)
		begun := false
		for sc.Scan() {
			line, ok := strings.CutPrefix(sc.Text(), "data: ")
			if ok && !begun {
				a.first, begun = time.Now(), true
			}
			if !ok || line == "[DONE]" {
				continue
			}
			var chunk struct {
				Usage *struct {
					PromptTokens     int64 `json:"prompt_tokens"`
					CompletionTokens int64 `json:"completion_tokens"`
				} `json:"usage"`
			}
			if json.Unmarshal([]byte(line), &chunk) == nil && chunk.Usage != nil {
				usage.Usage = chunk.Usage
			}
		}
		if sc.Err() != nil {
			return false
		}
	} else if err := json.NewDecoder(resp.Body).Decode(&usage); err != nil {
		return false
	}
	if usage.Usage == nil {
		r.t.Errorf("%s: answer without usage", u.name)
		return false
	}
	a.done = time.Now()
	a.tokens = usage.Usage.PromptTokens + usage.Usage.CompletionTokens
	r.mu.Lock()
	r.answers = append(r.answers, a)
	r.mu.Unlock()
	return true
}

// spawn runs loop in a goroutine from start until stop (or ctx ends).
func spawn(ctx context.Context, wg *sync.WaitGroup, start, stop time.Time, loop func(ctx context.Context)) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		time.Sleep(time.Until(start))
		cctx, cancel := context.WithDeadline(ctx, stop)
		defer cancel()
		loop(cctx)
	}()
}

// closedLoop runs n clients of u, each sending its next request think after the
// previous one is answered, from start until stop (or ctx ends). size gives the
// max_tokens of the i-th request of a client.
func (r *fairRig) closedLoop(ctx context.Context, wg *sync.WaitGroup, u fairUser, n int, start, stop time.Time, size func(i int) int, stream bool, think time.Duration) {
	for range n {
		spawn(ctx, wg, start, stop, func(ctx context.Context) {
			for i := 0; ctx.Err() == nil; i++ {
				if !r.chat(ctx, u, size(i), stream) && ctx.Err() == nil {
					time.Sleep(10 * time.Millisecond)
				}
				time.Sleep(think)
			}
		})
	}
}

// openLoop sends requests of u at a fixed rate from start until stop, whatever
// happens to the earlier ones.
func (r *fairRig) openLoop(ctx context.Context, wg *sync.WaitGroup, u fairUser, every time.Duration, start, stop time.Time, size func(i int) int, stream bool) {
	spawn(ctx, wg, start, stop, func(ctx context.Context) {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for i := 0; ; i++ {
			wg.Add(1)
			go func() { defer wg.Done(); r.chat(ctx, u, size(i), stream) }()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	})
}

// tokensBetween sums the tokens each user was served in [from, to): an answer's
// tokens count in proportion to how much of its transfer (first byte to last)
// falls into the window, so that a window's edges cut answers rather than
// moving whole ones in or out. (Answers completed after the call do not count.)
func (r *fairRig) tokensBetween(from, to time.Time) map[string]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int64{}
	for _, a := range r.answers {
		start, end := a.first, a.done
		if !end.After(start) {
			if !end.Before(from) && end.Before(to) {
				out[a.user] += a.tokens
			}
			continue
		}
		lo, hi := max(start.UnixNano(), from.UnixNano()), min(end.UnixNano(), to.UnixNano())
		if hi > lo {
			out[a.user] += a.tokens * (hi - lo) / end.Sub(start).Nanoseconds()
		}
	}
	return out
}

// untilTokens waits until the users have been served n tokens since since and
// returns that moment; it fails the test when that takes longer than limit.
func (r *fairRig) untilTokens(since time.Time, n int64, limit time.Duration) time.Time {
	r.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		now := time.Now()
		var sum int64
		for _, v := range r.tokensBetween(since, now) {
			sum += v
		}
		if sum >= n {
			return now
		}
		require.True(r.t, now.Before(deadline), "only %d of %d tokens served in %s", sum, n, limit)
		time.Sleep(50 * time.Millisecond)
	}
}

// requestsBetween counts the answers each user completed in [from, to).
func (r *fairRig) requestsBetween(from, to time.Time) map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for _, a := range r.answers {
		if !a.done.Before(from) && a.done.Before(to) {
			out[a.user]++
		}
	}
	return out
}

// waits returns the queue waits (send to first byte) of user's answers sent in [from, to).
func (r *fairRig) waits(user string, from, to time.Time) []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []time.Duration
	for _, a := range r.answers {
		if a.user == user && !a.sent.Before(from) && a.sent.Before(to) {
			out = append(out, a.first.Sub(a.sent))
		}
	}
	slices.Sort(out)
	return out
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[min(len(d)-1, int(math.Ceil(p*float64(len(d))))-1)]
}

// jain is the weight-normalised Jain index of the users' tokens.
func jain(tokens map[string]int64, weights map[string]int) float64 {
	var s, s2 float64
	for u, w := range weights {
		x := float64(tokens[u]) / float64(w)
		s += x
		s2 += x * x
	}
	if s2 == 0 {
		return 0
	}
	return s * s / (float64(len(weights)) * s2)
}

// shareReport formats each user's token share against its weighted share.
func shareReport(tokens map[string]int64, weights map[string]int) string {
	var total int64
	var wsum int
	names := make([]string, 0, len(weights))
	for u, w := range weights {
		total += tokens[u]
		wsum += w
		names = append(names, u)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, u := range names {
		fmt.Fprintf(&b, "%s: w%d %.1f%% (want %.1f%%) ", u, weights[u],
			100*float64(tokens[u])/float64(max(total, 1)), 100*float64(weights[u])/float64(wsum))
	}
	return b.String()
}
