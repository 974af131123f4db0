package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/e2e/internal/cluster"
	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
)

// cutProxy stands between the data plane and a backend so that a test can kill
// the backend abruptly: cut closes every open connection mid-stream, refuse
// makes new connections close before a byte is answered.
type cutProxy struct {
	ln      net.Listener
	target  string
	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	refused bool
}

func startCutProxy(t *testing.T, targetURL string) (*cutProxy, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &cutProxy{ln: ln, target: strings.TrimPrefix(targetURL, "http://"), conns: map[net.Conn]struct{}{}}
	go p.serve()
	t.Cleanup(func() { _ = ln.Close(); p.cut() })
	return p, "http://" + ln.Addr().String()
}

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refused := p.refused
		if !refused {
			p.conns[c] = struct{}{}
		}
		p.mu.Unlock()
		if refused {
			_ = c.Close()
			continue
		}
		go p.pipe(c)
	}
}

func (p *cutProxy) pipe(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = c.Close()
		return
	}
	p.mu.Lock()
	p.conns[up] = struct{}{}
	p.mu.Unlock()
	go func() { _, _ = io.Copy(up, c); _ = up.Close() }()
	_, _ = io.Copy(c, up)
	_ = c.Close()
}

// cut closes every connection open through the proxy.
func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
}

// refuse makes the backend die before its first byte from now on.
func (p *cutProxy) refuse() {
	p.mu.Lock()
	p.refused = true
	p.mu.Unlock()
	p.cut()
}

// dialect is one client dialect's chat request and the shape of its errors.
type dialect struct {
	name, path string
	body       func(model string, stream bool) string
	headers    map[string]string
	// streamError reports whether a stream's remaining text ends with the
	// dialect's own error event.
	streamError func(rest string) bool
	// errorBody reports whether a whole answer is the dialect's error envelope.
	errorBody func(raw []byte) bool
}

var dialects = []dialect{
	{
		name: "openai", path: "/v1/chat/completions",
		body: func(model string, stream bool) string {
			return fmt.Sprintf(`{"model":%q,"stream":%v,"max_tokens":500,"messages":[{"role":"user","content":"go on"}]}`, model, stream)
		},
		streamError: func(rest string) bool {
			return strings.Contains(rest, "data: {\"error\":") && !strings.Contains(rest, "[DONE]")
		},
		errorBody: func(raw []byte) bool {
			var e struct {
				Error struct{ Message, Type string } `json:"error"`
			}
			return json.Unmarshal(raw, &e) == nil && e.Error.Message != "" && e.Error.Type != ""
		},
	},
	{
		name: "anthropic", path: "/v1/messages", headers: map[string]string{"anthropic-version": "2023-06-01"},
		body: func(model string, stream bool) string {
			return fmt.Sprintf(`{"model":%q,"stream":%v,"max_tokens":500,"messages":[{"role":"user","content":"go on"}]}`, model, stream)
		},
		streamError: func(rest string) bool {
			return strings.Contains(rest, "event: error\ndata: {\"type\":\"error\"") && !strings.Contains(rest, "event: message_stop")
		},
		errorBody: func(raw []byte) bool {
			var e struct {
				Type  string `json:"type"`
				Error struct{ Type, Message string }
			}
			return json.Unmarshal(raw, &e) == nil && e.Type == "error" && e.Error.Message != ""
		},
	},
	{
		name: "ollama", path: "/api/chat",
		body: func(model string, stream bool) string {
			return fmt.Sprintf(`{"model":%q,"stream":%v,"options":{"num_predict":500},"messages":[{"role":"user","content":"go on"}]}`, model, stream)
		},
		streamError: func(rest string) bool {
			lines := strings.Split(strings.TrimSpace(rest), "\n")
			var last struct {
				Error string `json:"error"`
				Done  bool   `json:"done"`
			}
			return json.Unmarshal([]byte(lines[len(lines)-1]), &last) == nil && last.Error != "" && !last.Done
		},
		errorBody: func(raw []byte) bool {
			var e struct {
				Error string `json:"error"`
			}
			return json.Unmarshal(raw, &e) == nil && e.Error != ""
		},
	},
}

func (d dialect) request(ctx context.Context, c *cluster.Cluster, model string, stream bool) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.DataPlaneURL+d.path, strings.NewReader(d.body(model, stream)))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.AdminKey)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range d.headers {
		req.Header.Set(k, v)
	}
	return http.DefaultClient.Do(req)
}

// TestBackendKilledBeforeAndAfterTheFirstByte kills a backend in the middle of
// a stream in each client dialect (the stream ends with the dialect's own error
// event, never a silent truncation), then kills it before its first byte (a
// clean error in the dialect's envelope). Failover to another backend before the
// first byte is TestBackendKilledIsFailedOverAndItsCircuitOpens.
func TestBackendKilledBeforeAndAfterTheFirstByte(t *testing.T) {
	t.Parallel()
	var backends []cluster.Backend
	proxies := map[string]*cutProxy{}
	for _, d := range dialects {
		_, simURL := startSim(t, enginesim.Config{Engine: enginesim.EngineVLLM, CompletionTokens: 400, InterTokenDelay: 20 * time.Millisecond,
			Models: []enginesim.ModelSpec{{Name: "cut-" + d.name, ContextLength: 4096}}})
		p, url := startCutProxy(t, simURL)
		proxies[d.name] = p
		backends = append(backends, cluster.Backend{Name: "cut-" + d.name, Engine: "vllm", URL: url})
	}
	c := cluster.Start(t, cluster.Options{Backends: backends})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			model := "cut-" + d.name
			resp, err := d.request(ctx, c, model, true)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			br := bufio.NewReader(resp.Body)
			first, err := br.ReadString('\n')
			require.NoError(t, err, "a first event arrives")
			require.NotEmpty(t, strings.TrimSpace(first))
			proxies[d.name].cut() // the backend dies mid-stream
			rest, err := io.ReadAll(br)
			require.NoError(t, err, "the stream ends cleanly for the client")
			require.True(t, d.streamError(string(rest)), "the stream ends with the %s error event:\n%s", d.name, rest)

			proxies[d.name].refuse() // and now before its first byte
			resp, err = d.request(ctx, c, model, false)
			require.NoError(t, err)
			raw, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.NoError(t, err)
			require.Contains(t, []int{http.StatusBadGateway, http.StatusServiceUnavailable}, resp.StatusCode, "%s", raw)
			require.True(t, d.errorBody(raw), "a %s error envelope: %s", d.name, raw)
			require.NotContains(t, string(raw), "Go value", "no decoder internals")
		})
	}
}

// sseUsage reads an OpenAI stream to its end and returns its usage chunk's
// total and whether [DONE] came.
func sseUsage(t *testing.T, r io.Reader) (total int64, done bool) {
	t.Helper()
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimPrefix(sc.Text(), "data: ")
		if line == "[DONE]" {
			return total, true
		}
		var chunk struct {
			Usage *struct {
				Total int64 `json:"total_tokens"`
			} `json:"usage"`
		}
		if json.Unmarshal([]byte(line), &chunk) == nil && chunk.Usage != nil {
			total = chunk.Usage.Total
		}
	}
	return total, false
}

// adminUsed returns the tokens charged to the admin user this period. It goes
// by user id (the bootstrap admin is user 1): after a control-plane restart the
// queue view knows users from adopted leases by id only, without their names.
func adminUsed(ctx context.Context, t *testing.T, c *cluster.Cluster) int64 {
	t.Helper()
	var q struct {
		Users []struct {
			UserID     string `json:"user_id"`
			TokensUsed string `json:"tokens_used"`
		} `json:"users"`
	}
	status, err := c.AdminJSON(ctx, c.RESTURL, http.MethodGet, "/api/admin/queue", nil, &q)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	for _, u := range q.Users {
		if u.UserID == "1" {
			var n int64
			_, _ = fmt.Sscan(u.TokensUsed, &n)
			return n
		}
	}
	return 0
}

// TestControlPlaneKilledUnderStreamingLoad kills the control plane (SIGKILL)
// while streams run: the streams finish, new requests get 503 with Retry-After
// in the meantime, the data plane reconnects by itself when the control plane
// comes back, and the usage charged afterwards is exactly what the streams
// reported.
func TestControlPlaneKilledUnderStreamingLoad(t *testing.T) {
	t.Parallel()
	_, simURL := startSim(t, enginesim.Config{Engine: enginesim.EngineOllama, CompletionTokens: 60, InterTokenDelay: 25 * time.Millisecond})
	c := cluster.Start(t, cluster.Options{
		Backends:         []cluster.Backend{{Name: "sim", Engine: "ollama", URL: simURL}},
		ControlPlaneArgs: []string{"-heartbeat-interval", "500ms", "-session-grace", "10s"},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	const streams = 4
	type result struct {
		total int64
		done  bool
		err   error
	}
	results := make(chan result, streams)
	started := make(chan struct{}, streams)
	for range streams {
		go func() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.DataPlaneURL+"/v1/chat/completions",
				strings.NewReader(`{"model":"sim-llama","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"go on"}]}`))
			req.Header.Set("Authorization", "Bearer "+c.AdminKey)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				results <- result{err: err}
				return
			}
			defer resp.Body.Close()
			started <- struct{}{}
			total, done := sseUsage(t, resp.Body)
			results <- result{total: total, done: done}
		}()
	}
	for range streams {
		<-started
	}
	c.KillControlPlane()
	killed := time.Now()

	// Meanwhile new requests are refused with 503 and Retry-After.
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.DataPlaneURL+"/v1/chat/completions",
		strings.NewReader(`{"model":"sim-llama","messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+c.AdminKey)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "%s", raw)
	require.NotEmpty(t, resp.Header.Get("Retry-After"))
	// The session stream notices the broken connection on its own goroutine,
	// a moment after an Admit on the same connection may have: /readyz turns
	// 503 within that moment (load balancers poll it every few seconds).
	require.Eventually(t, func() bool {
		readyz, err := http.Get(c.DataPlaneURL + "/readyz")
		if err != nil {
			return false
		}
		readyz.Body.Close()
		return readyz.StatusCode == http.StatusServiceUnavailable
	}, 5*time.Second, 10*time.Millisecond, "not ready without its control plane")

	var want int64
	for range streams {
		r := <-results
		require.NoError(t, r.err)
		require.True(t, r.done, "every stream in flight finishes")
		require.Positive(t, r.total)
		want += r.total
	}
	t.Logf("streams finished %v after the kill", time.Since(killed).Round(time.Millisecond))

	c.StartControlPlane()
	back := time.Now()
	require.Eventually(t, func() bool {
		resp, err := http.Get(c.DataPlaneURL + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 15*time.Second, 10*time.Millisecond, "the data plane reconnects by itself\n%s", c.Logs())
	t.Logf("data plane ready %v after the control plane", time.Since(back).Round(time.Millisecond))

	// The releases of the streams that ended during the outage reach the new
	// control plane (retried with backoff, at most 10 s apart): usage is exactly
	// what the streams reported.
	require.Eventually(t, func() bool { return adminUsed(ctx, t, c) == want }, 40*time.Second, 50*time.Millisecond,
		"usage %d, want %d\n%s", adminUsed(ctx, t, c), want, c.Logs())
	t.Logf("usage exact (%d tokens) %v after the control plane's return", want, time.Since(back).Round(time.Millisecond))
	client := openaiClient(c, c.AdminKey)
	_, err = client.Chat.Completions.New(ctx, chatParams("sim-llama", 3))
	require.NoError(t, err, "serving again")
}

// TestSlowClientsAreCutOff opens raw connections to a real data plane: headers
// sent too slowly and bodies sent too slowly are cut off after the configured
// timeouts, and a body without a key is refused at once.
func TestSlowClientsAreCutOff(t *testing.T) {
	t.Parallel()
	_, simURL := startSim(t, enginesim.Config{Engine: enginesim.EngineOllama})
	c := cluster.Start(t, cluster.Options{
		Backends:      []cluster.Backend{{Name: "sim", Engine: "ollama", URL: simURL}},
		DataPlaneArgs: []string{"-read-header-timeout", "500ms", "-body-read-timeout", "500ms", "-body-min-rate", "1KiB"},
	})
	addr := strings.TrimPrefix(c.DataPlaneURL, "http://")
	body := `{"model":"sim-llama","messages":[{"role":"user","content":"` + strings.Repeat("x", 100) + `"}]}`

	// trickle sends head at once and then slow, a byte every 20 ms.
	trickle := func(head, slow string) (status int, took time.Duration) {
		t.Helper()
		conn, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer conn.Close()
		start := time.Now()
		_, err = io.WriteString(conn, head)
		require.NoError(t, err)
		go func() {
			for i := range len(slow) {
				if _, err := conn.Write([]byte{slow[i]}); err != nil {
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(30*time.Second)))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil { // closed without an answer
			return 0, time.Since(start)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, time.Since(start)
	}

	t.Run("slow headers", func(t *testing.T) {
		head := "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + c.AdminKey + "\r\n\r\n"
		status, took := trickle("", head)
		// net/http closes the connection, with a 400 when part of the headers came.
		require.Contains(t, []int{0, http.StatusBadRequest}, status)
		require.Less(t, took, 5*time.Second)
		t.Logf("slow headers cut off after %v", took.Round(time.Millisecond))
	})
	t.Run("slow body", func(t *testing.T) {
		head := fmt.Sprintf("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n", c.AdminKey, len(body))
		status, took := trickle(head, body)
		require.Equal(t, http.StatusRequestTimeout, status)
		require.Less(t, took, 10*time.Second)
		t.Logf("slow body cut off after %v", took.Round(time.Millisecond))
	})
	t.Run("no key", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer conn.Close()
		start := time.Now()
		_, err = fmt.Fprintf(conn, "POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n{", len(body))
		require.NoError(t, err)
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		require.NoError(t, err)
		raw, _ := io.ReadAll(resp.Body)
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "%s", raw)
		require.True(t, resp.Close)
		require.Less(t, time.Since(start), 2*time.Second, "refused before the body")
	})
}

// TestRestartWithSeedsKeepsAdminChanges changes a seeded backend through the
// admin API and restarts the control plane with the same seeds, on SQLite and
// on MariaDB: the admin's values survive.
func TestRestartWithSeedsKeepsAdminChanges(t *testing.T) {
	t.Parallel()
	_, simURL := startSim(t, enginesim.Config{Engine: enginesim.EngineOllama})
	for _, db := range []string{"sqlite", "mariadb"} {
		t.Run(db, func(t *testing.T) {
			t.Parallel()
			opts := cluster.Options{Backends: []cluster.Backend{{Name: "seeded", Engine: "ollama", URL: simURL}}}
			if db == "mariadb" {
				opts.DBDriver, opts.DBDSN = "mysql", mariaDB(t)
			}
			c := cluster.Start(t, opts)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			type backend struct {
				ID            string `json:"id"`
				MaxConcurrent int    `json:"max_concurrent"`
				Priority      int    `json:"priority"`
			}
			get := func() backend {
				var bs []backend
				status, err := c.AdminJSON(ctx, c.RESTURL, http.MethodGet, "/api/admin/backends", nil, &bs)
				require.NoError(t, err)
				require.Equal(t, http.StatusOK, status)
				require.Len(t, bs, 1)
				return bs[0]
			}
			b := get()
			status, err := c.AdminJSON(ctx, c.RESTURL, http.MethodPatch, "/api/admin/backends/"+b.ID,
				map[string]any{"max_concurrent": 150, "priority": 5}, nil)
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, status)
			for range 2 {
				c.KillControlPlane()
				c.StartControlPlane()
				got := get()
				require.Equal(t, [3]any{b.ID, 150, 5}, [3]any{got.ID, got.MaxConcurrent, got.Priority}, "the seed kept the admin's changes")
			}
		})
	}
}

func chatParams(model string, maxTokens int64) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model: model, Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}, MaxTokens: openai.Int(maxTokens),
	}
}
