package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/e2e/internal/cluster"
	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
)

// auditRecord is the part of an audit record the tests check.
type auditRecord struct {
	RequestID        string `json:"request_id"`
	Surface          string `json:"surface"`
	Endpoint         string `json:"endpoint"`
	Model            string `json:"model"`
	Status           string `json:"status"`
	StatusCode       int    `json:"status_code"`
	Streaming        bool   `json:"streaming"`
	PromptTokens     int64  `json:"prompt_tokens,string"`
	CompletionTokens int64  `json:"completion_tokens,string"`
	Username         string `json:"username"`
	PromptText       string `json:"prompt_text"`
	ResponseText     string `json:"response_text"`
	FinishReason     string `json:"finish_reason"`
	Error            string `json:"error"`
	ClientIP         string `json:"client_ip"`
	UserAgent        string `json:"user_agent"`
	BackendIDs       []any  `json:"backend_ids"`
	TotalMS          int64  `json:"total_ms,string"`
}

// auditSent is one request a test sent and what its client got.
type auditSent struct {
	requestID string
	surface   string
	endpoint  string
	model     string
	stream    bool
	status    int
	probe     string
	body      string
}

// surfaceRequest builds a request of one dialect; model and probe go in.
func surfaceRequest(surface string, stream bool, model, probe string) (string, string) {
	s := fmt.Sprint(stream)
	switch surface {
	case "ollama":
		return "/api/chat", `{"model":"` + model + `","stream":` + s + `,"messages":[{"role":"user","content":"` + probe + `"}]}`
	case "ollama-generate":
		return "/api/generate", `{"model":"` + model + `","stream":` + s + `,"prompt":"` + probe + `"}`
	case "ollama-embed":
		return "/api/embed", `{"model":"` + model + `","input":"` + probe + `"}`
	case "openai-embed":
		return "/v1/embeddings", `{"model":"` + model + `","input":"` + probe + `"}`
	case "openai-completions":
		return "/v1/completions", `{"model":"` + model + `","stream":` + s + `,"prompt":"` + probe + `"}`
	case "anthropic":
		return "/v1/messages", `{"model":"` + model + `","max_tokens":64,"stream":` + s + `,"messages":[{"role":"user","content":"` + probe + `"}]}`
	}
	return "/v1/chat/completions", `{"model":"` + model + `","stream":` + s + `,"stream_options":` + map[bool]string{true: `{"include_usage":true}`, false: "null"}[stream] + `,"messages":[{"role":"user","content":"` + probe + `"}]}`
}

// sendAudited sends one request and reads the whole answer.
func sendAudited(ctx context.Context, c *cluster.Cluster, key, surface string, stream bool, model, probe string) (auditSent, error) {
	path, body := surfaceRequest(surface, stream, model, probe)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.DataPlaneURL+path, strings.NewReader(body))
	if err != nil {
		return auditSent{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "audit-e2e/1")
	if surface == "anthropic" {
		req.Header.Set("x-api-key", key)
		req.Header.Set("anthropic-version", "2023-06-01")
	} else {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return auditSent{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return auditSent{}, err
	}
	name, _, _ := strings.Cut(surface, "-") // ollama-generate is the ollama surface
	return auditSent{requestID: resp.Header.Get("X-Request-ID"), surface: name, endpoint: path, model: model, stream: stream,
		status: resp.StatusCode, probe: probe, body: string(raw)}, nil
}

// auditRecords reads every audit record through the search API, page by page.
func auditRecords(t *testing.T, c *cluster.Cluster, query string) []auditRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var all []auditRecord
	cursor := ""
	for {
		var page struct {
			Records    []auditRecord `json:"records"`
			NextCursor string        `json:"next_cursor"`
		}
		status, err := c.AdminJSON(ctx, c.RESTURL, http.MethodGet, "/api/admin/audit/search?limit=1000&cursor="+url.QueryEscape(cursor)+query, nil, &page)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, status)
		all = append(all, page.Records...)
		if page.NextCursor == "" {
			return all
		}
		cursor = page.NextCursor
	}
}

// waitAuditCount polls until the search API holds want records (or the
// deadline), and returns them.
func waitAuditCount(t *testing.T, c *cluster.Cluster, want int, within time.Duration) []auditRecord {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		recs := auditRecords(t, c, "")
		if len(recs) >= want || time.Now().After(deadline) {
			return recs
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// requireExactlyOnce checks that recs holds one record per sent request and no other.
func requireExactlyOnce(t *testing.T, sent []auditSent, recs []auditRecord) map[string]auditRecord {
	t.Helper()
	byID := map[string]auditRecord{}
	for _, r := range recs {
		_, dup := byID[r.RequestID]
		require.False(t, dup, "request %s recorded twice", r.RequestID)
		byID[r.RequestID] = r
	}
	for _, s := range sent {
		_, ok := byID[s.requestID]
		require.True(t, ok, "request %s (%s, HTTP %d) has no record", s.requestID, s.surface, s.status)
	}
	require.Len(t, recs, len(sent), "exactly one record per request answered")
	return byID
}

// TestAuditCountsEveryRequest sends requests on every surface, streamed and
// not, answered, refused by admission and refused before the relay (no key, no
// model), embeddings (OpenAI's and Ollama's), legacy completions and requests
// the engine fails, and finds exactly one record for each, with its surface,
// endpoint and status, what was asked, what was answered and the exact usage.
func TestAuditCountsEveryRequest(t *testing.T) {
	t.Parallel()
	_, simURL := startSim(t, enginesim.Config{Engine: enginesim.EngineOllama, CompletionTokens: 7,
		Models: []enginesim.ModelSpec{{Name: "sim", ContextLength: 4096}, {Name: "sim-embed", Capabilities: []string{"embedding"}}},
		Script: func(req enginesim.Request) *enginesim.Reply {
			if n := len(req.Messages); n > 0 && strings.Contains(req.Messages[n-1].Content, "explode") {
				return &enginesim.Reply{Status: http.StatusInternalServerError, ErrorMessage: "simulated engine failure"}
			}
			return nil
		}})
	c := cluster.Start(t, cluster.Options{Backends: []cluster.Backend{{Name: "sim", Engine: "ollama", URL: simURL}}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var sent []auditSent
	i := 0
	for _, surface := range []string{"openai", "ollama", "ollama-generate", "anthropic"} {
		for _, stream := range []bool{false, true} {
			for _, model := range []string{"sim", "sim", "no-such-model"} {
				i++
				s, err := sendAudited(ctx, c, c.AdminKey, surface, stream, model, fmt.Sprintf("probe%03d kangaroo", i))
				require.NoError(t, err)
				require.NotEmpty(t, s.requestID)
				if model == "sim" {
					require.Equal(t, http.StatusOK, s.status, s.body)
				} else {
					require.Equal(t, http.StatusNotFound, s.status, s.body)
				}
				sent = append(sent, s)
			}
		}
		// Refused before the relay: no key (401), no model (400). Recorded
		// too, without a principal or content.
		for _, key := range []string{"", c.AdminKey} {
			model := "sim"
			if key != "" {
				model = ""
			}
			i++
			s, err := sendAudited(ctx, c, key, surface, false, model, fmt.Sprintf("probe%03d refused", i))
			require.NoError(t, err)
			require.NotEmpty(t, s.requestID)
			require.Contains(t, []int{http.StatusBadRequest, http.StatusUnauthorized}, s.status, "%s key=%t: %s", surface, key != "", s.body)
			sent = append(sent, s)
		}
	}
	// Embeddings, legacy completions, and requests the engine fails (last,
	// so that the backend's failures cannot refuse the others).
	for _, r := range []struct {
		surface, model string
		stream         bool
		status         int
	}{
		{"openai-embed", "sim-embed", false, http.StatusOK}, {"ollama-embed", "sim-embed", false, http.StatusOK},
		{"openai-completions", "sim", false, http.StatusOK}, {"openai-completions", "sim", true, http.StatusOK},
		{"openai", "sim", false, http.StatusBadGateway}, {"ollama", "sim", false, http.StatusBadGateway},
	} {
		i++
		word := "kangaroo"
		if r.status != http.StatusOK {
			word = "explode"
		}
		s, err := sendAudited(ctx, c, c.AdminKey, r.surface, r.stream, r.model, fmt.Sprintf("probe%03d %s", i, word))
		require.NoError(t, err)
		require.NotEmpty(t, s.requestID)
		require.Equal(t, r.status, s.status, "%s: %s", r.surface, s.body)
		sent = append(sent, s)
	}
	recs := waitAuditCount(t, c, len(sent), 15*time.Second)
	byID := requireExactlyOnce(t, sent, recs)
	for _, s := range sent {
		r := byID[s.requestID]
		assert.Equal(t, s.surface, r.Surface, s.requestID)
		assert.Equal(t, s.endpoint, r.Endpoint, s.requestID)
		assert.Equal(t, s.stream, r.Streaming, s.requestID)
		assert.Equal(t, s.status, r.StatusCode, s.requestID)
		assert.Equal(t, "127.0.0.1", r.ClientIP)
		assert.Equal(t, "audit-e2e/1", r.UserAgent)
		if s.status != http.StatusOK {
			assert.Equal(t, "failed", r.Status, s.requestID)
			assert.NotEmpty(t, r.Error)
			continue
		}
		assert.Equal(t, "completed", r.Status, s.requestID)
		assert.Equal(t, "admin", r.Username, "the lease names the principal")
		assert.Equal(t, s.model, r.Model)
		assert.Len(t, r.BackendIDs, 1)
		if strings.HasSuffix(s.endpoint, "embed") || strings.HasSuffix(s.endpoint, "embeddings") {
			assert.Zero(t, r.CompletionTokens, "%s %s: embeddings generate nothing", s.endpoint, s.requestID)
		} else {
			assert.EqualValues(t, 7, r.CompletionTokens, "%s %s: the engine's exact count", s.endpoint, s.requestID)
		}
		assert.Positive(t, r.PromptTokens)
		assert.Empty(t, r.PromptText, "search results carry no content")
	}
	// Content is in the full record, and the free text finds it.
	one := sent[0]
	var full struct {
		Record auditRecord `json:"record"`
	}
	status, err := c.AdminJSON(ctx, c.RESTURL, http.MethodGet, "/api/admin/audit/"+one.requestID, nil, &full)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	assert.Contains(t, full.Record.PromptText, one.probe)
	assert.Equal(t, enginesim.DefaultText(7), full.Record.ResponseText)
	hits := auditRecords(t, c, "&text=probe005")
	require.Len(t, hits, 1)
	assert.Equal(t, sent[4].requestID, hits[0].RequestID)
	streamed := auditRecords(t, c, "&surface=anthropic&status=completed")
	assert.Len(t, streamed, 4)
}

// auditLoad sends requests on every surface from a few workers until stopped,
// keeping every request that got an answer (whatever its status).
type auditLoad struct {
	mu   sync.Mutex
	sent []auditSent
	stop chan struct{}
	wg   sync.WaitGroup
}

func startAuditLoad(c *cluster.Cluster, key string, workers int) *auditLoad {
	l := &auditLoad{stop: make(chan struct{})}
	surfaces := []string{"openai", "ollama", "anthropic"}
	for w := range workers {
		l.wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-l.stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				s, err := sendAudited(ctx, c, key, surfaces[(w+n)%3], n%2 == 0, "sim", fmt.Sprintf("load w%d n%d", w, n))
				cancel()
				if err != nil || s.requestID == "" {
					time.Sleep(50 * time.Millisecond) // no answer (connection refused): nothing to record
					continue
				}
				l.mu.Lock()
				l.sent = append(l.sent, s)
				l.mu.Unlock()
				if s.status != http.StatusOK {
					time.Sleep(50 * time.Millisecond)
				}
			}
		})
	}
	return l
}

func (l *auditLoad) finish() []auditSent {
	close(l.stop)
	l.wg.Wait()
	return l.sent
}

// TestAuditSurvivesControlPlaneKill kills the control plane with SIGKILL under
// load and restarts it: every request answered before, during and after has
// exactly one record (the data plane spools what the control plane did not
// acknowledge and replays it).
func TestAuditSurvivesControlPlaneKill(t *testing.T) {
	t.Parallel()
	_, simURL := startSim(t, enginesim.Config{Engine: enginesim.EngineOllama, Models: []enginesim.ModelSpec{{Name: "sim", ContextLength: 4096}}, CompletionTokens: 5, InterTokenDelay: 2 * time.Millisecond})
	c := cluster.Start(t, cluster.Options{Backends: []cluster.Backend{{Name: "sim", Engine: "ollama", URL: simURL}},
		DataPlaneArgs: []string{"-audit-retry-interval", "200ms"}})
	load := startAuditLoad(c, c.AdminKey, 4)
	time.Sleep(2 * time.Second)
	c.KillControlPlane()
	time.Sleep(2 * time.Second)
	c.StartControlPlane()
	time.Sleep(2 * time.Second)
	sent := load.finish()
	require.NotEmpty(t, sent)
	ok := 0
	for _, s := range sent {
		if s.status == http.StatusOK {
			ok++
		}
	}
	require.Positive(t, ok)
	recs := waitAuditCount(t, c, len(sent), 30*time.Second)
	t.Logf("%d requests answered (%d with 200), %d records", len(sent), ok, len(recs))
	if len(recs) != len(sent) {
		t.Log(c.Logs())
	}
	requireExactlyOnce(t, sent, recs)
}

// TestAuditAcknowledgedRecordsSurviveDataPlaneKill kills the data plane with
// SIGKILL once its records were acknowledged: they are all in the database.
func TestAuditAcknowledgedRecordsSurviveDataPlaneKill(t *testing.T) {
	t.Parallel()
	_, simURL := startSim(t, enginesim.Config{Engine: enginesim.EngineOllama, Models: []enginesim.ModelSpec{{Name: "sim", ContextLength: 4096}}, CompletionTokens: 3})
	c := cluster.Start(t, cluster.Options{Backends: []cluster.Backend{{Name: "sim", Engine: "ollama", URL: simURL}}})
	load := startAuditLoad(c, c.AdminKey, 3)
	time.Sleep(2 * time.Second)
	sent := load.finish()
	recs := waitAuditCount(t, c, len(sent), 15*time.Second)
	requireExactlyOnce(t, sent, recs)
	c.KillDataPlane()
	c.StartDataPlane()
	s, err := sendAudited(context.Background(), c, c.AdminKey, "openai", false, "sim", "after restart")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, s.status, s.body)
	recs = waitAuditCount(t, c, len(sent)+1, 15*time.Second)
	requireExactlyOnce(t, append(sent, s), recs)
}

// auditOutage is how long TestAuditDatabaseOutageAndFullSpools keeps the
// database down (MINDROUTER_E2E_AUDIT_OUTAGE, a duration; default 6s).
func auditOutage(t *testing.T) time.Duration {
	if v := os.Getenv("MINDROUTER_E2E_AUDIT_OUTAGE"); v != "" {
		d, err := time.ParseDuration(v)
		require.NoError(t, err, "MINDROUTER_E2E_AUDIT_OUTAGE")
		return d
	}
	return 6 * time.Second
}

// dpMetric reads one counter of the data plane's /metrics.
func dpMetric(t *testing.T, c *cluster.Cluster, name string) float64 {
	t.Helper()
	resp, err := http.Get(c.DataPlaneURL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			require.NoError(t, err)
			return f
		}
	}
	return 0
}

// TestAuditDatabaseOutageAndFullSpools kills the control planes' database (a
// MariaDB of the test's own) under load, with three clusters on it: one with
// the default spools (the control plane spools to its disk and acknowledges;
// every record is there once the database is back), and two whose control
// plane cannot spool and whose data-plane spool is tiny, so that it fills:
// failing closed refuses requests with 503 in the client's dialect and loses
// no record; failing open answers them and drops records, counted.
func TestAuditDatabaseOutageAndFullSpools(t *testing.T) {
	t.Parallel()
	maria := startOwnMariaDB(t)
	root, err := sql.Open("mysql", maria.dsn(""))
	require.NoError(t, err)
	defer root.Close()
	_, simURL := startSim(t, enginesim.Config{Engine: enginesim.EngineOllama, Models: []enginesim.ModelSpec{{Name: "sim", ContextLength: 4096}}, CompletionTokens: 3})
	start := func(db string, cpArgs, dpArgs []string) *cluster.Cluster {
		_, err := root.Exec("CREATE DATABASE " + db + " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
		require.NoError(t, err)
		return cluster.Start(t, cluster.Options{
			Backends: []cluster.Backend{{Name: "sim", Engine: "ollama", URL: simURL}},
			DBDriver: "mysql", DBDSN: maria.dsn(db),
			ControlPlaneArgs: append([]string{"-db-timeout", "1s", "-audit-replay-interval", "200ms"}, cpArgs...),
			DataPlaneArgs:    append([]string{"-audit-retry-interval", "200ms"}, dpArgs...),
		})
	}
	spooling := start("audit_spooling", nil, nil)
	closed := start("audit_closed", []string{"-audit-spool-max-bytes", "1"}, []string{"-audit-spool-max-bytes", "2048"})
	open := start("audit_open", []string{"-audit-spool-max-bytes", "1"}, []string{"-audit-spool-max-bytes", "2048", "-audit-spool-full", "fail-open"})
	clusters := map[string]*cluster.Cluster{"spooling": spooling, "closed": closed, "open": open}
	loads := map[string]*auditLoad{}
	for name, c := range clusters {
		// Warm the key cache: admission goes on while the database is down.
		s, err := sendAudited(context.Background(), c, c.AdminKey, "openai", false, "sim", "warm")
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, s.status, s.body)
		l := startAuditLoad(c, c.AdminKey, 2)
		l.mu.Lock() // the load's workers append too
		l.sent = append(l.sent, s)
		l.mu.Unlock()
		loads[name] = l
	}
	time.Sleep(time.Second)
	maria.kill()
	time.Sleep(auditOutage(t))

	// The full spool that fails closed refuses in the client's dialect.
	refusal, err := sendAudited(context.Background(), closed, closed.AdminKey, "openai", false, "sim", "refused?")
	require.NoError(t, err)
	require.Equal(t, http.StatusServiceUnavailable, refusal.status, refusal.body)
	assert.Contains(t, refusal.body, `"code":"audit_unavailable"`, "OpenAI's envelope")
	// Anthropic's dialect says unavailable with its own 529 overloaded_error.
	refusalA, err := sendAudited(context.Background(), closed, closed.AdminKey, "anthropic", false, "sim", "refused?")
	require.NoError(t, err)
	require.Equal(t, 529, refusalA.status, refusalA.body)
	assert.Contains(t, refusalA.body, `"type":"overloaded_error"`)
	assert.Contains(t, refusalA.body, "audit trail")
	okOpen, err := sendAudited(context.Background(), open, open.AdminKey, "openai", false, "sim", "answered")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, okOpen.status, okOpen.body)

	maria.start()
	time.Sleep(2 * time.Second)
	sent := map[string][]auditSent{}
	for name, l := range loads {
		sent[name] = l.finish()
	}
	sent["closed"] = append(sent["closed"], refusal, refusalA)
	sent["open"] = append(sent["open"], okOpen)

	recs := waitAuditCount(t, spooling, len(sent["spooling"]), 60*time.Second)
	requireExactlyOnce(t, sent["spooling"], recs)

	recs = waitAuditCount(t, closed, len(sent["closed"]), 60*time.Second)
	requireExactlyOnce(t, sent["closed"], recs)
	refused := 0
	for _, s := range sent["closed"] {
		if s.status == http.StatusServiceUnavailable || s.status == 529 {
			refused++
		}
	}
	assert.Positive(t, refused)

	dropped := dpMetric(t, open, "mindrouter_dp_audit_records_dropped_total")
	require.Positive(t, dropped, "failing open drops what does not fit")
	recs = waitAuditCount(t, open, len(sent["open"])-int(dropped), 60*time.Second)
	assert.Len(t, recs, len(sent["open"])-int(dropped), "every record not dropped arrives once")
	t.Logf("spooling: %d requests; fail-closed: %d requests, %d refused; fail-open: %d requests, %.0f records dropped",
		len(sent["spooling"]), len(sent["closed"]), refused, len(sent["open"]), dropped)
}
