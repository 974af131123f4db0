package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/e2e/internal/cluster"
	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
)

// BenchmarkWebPagesTenThousandUsers measures server-rendered page latency
// end to end — browser to data plane, data plane to control plane over gRPC,
// control plane to MariaDB — with 10,000 users in the database. Each sub-benchmark
// reports its p50 and p99 in milliseconds besides ns/op.
//
//	go test -run '^$' -bench BenchmarkWebPagesTenThousandUsers -benchtime 300x ./dataplane/e2e/
func BenchmarkWebPagesTenThousandUsers(b *testing.B) {
	dsn, db, name := newMariaDB(b)
	_, simURL := startSim(b, enginesim.Config{Engine: enginesim.EngineVLLM, Models: []enginesim.ModelSpec{{Name: "sim-chat", ContextLength: 4096}}})
	c := cluster.Start(b, cluster.Options{Backends: []cluster.Backend{{Name: "sim", Engine: "vllm", URL: simURL}}, DBDriver: "mysql", DBDSN: dsn})
	adaID := createUser(b, c, "ada", "admin")
	// MariaDB's sequence engine makes the 10,000 rows in one statement.
	_, err := db.Exec(`INSERT INTO ` + name + `.users (username, email, full_name, is_active, group_id, created_at, updated_at)
		SELECT CONCAT('bench', seq), CONCAT('bench', seq, '@example.edu'), CONCAT('Bench User ', seq), 1,
		(SELECT id FROM ` + name + `.` + "`groups`" + ` WHERE name = 'student'), NOW(), NOW() FROM ` + name + `.seq_1_to_10000`)
	require.NoError(b, err)

	br := newBrowser(b, c.DataPlaneURL)
	resp, _ := br.do("POST", "/login", url.Values{"username": {"ada"}, "password": {"correct horse battery"}, "next": {"/dashboard"}}, nil)
	require.Equal(b, http.StatusSeeOther, resp.StatusCode)

	// Something in the audit trail and the admin-action log for their pages.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client := openaiClient(c, c.AdminKey)
	for i := range 20 {
		_, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "sim-chat",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(fmt.Sprintf("bench request %d", i))}})
		require.NoError(b, err)
	}
	student, ok := groupByName(b, c, "student")
	require.True(b, ok)
	groupID := student.ID
	var recs struct {
		Records []struct {
			RequestID string `json:"request_id"`
		} `json:"records"`
	}
	require.Eventually(b, func() bool {
		code, err := c.AdminJSON(ctx, c.RESTURL, "GET", "/api/admin/audit/search?limit=1", nil, &recs)
		return err == nil && code == http.StatusOK && len(recs.Records) == 1
	}, 30*time.Second, 200*time.Millisecond, "the requests reach the audit trail")

	// A node with two GPUs and an hour of samples for the telemetry page.
	const node, secret = "bench-node", "bench-node-secret-0123456789abcdef"
	code, err := c.AdminJSON(ctx, c.RESTURL, http.MethodPost, "/api/admin/nodes/register",
		map[string]any{"name": node, "hostname": "bench-host", "agent_secret": secret}, nil)
	require.NoError(b, err)
	require.Equal(b, http.StatusOK, code)
	s := agentStream(b, ctx, c, node, secret)
	for m := range 60 {
		require.NoError(b, sendSample(s, time.Now().Add(-time.Duration(60-m)*time.Minute), m))
	}

	for _, path := range []string{"/", "/models", "/dashboard", "/admin", "/admin/users", "/admin/backends", "/admin/queue",
		"/admin/telemetry", "/admin/telemetry?range=1h", "/admin/telemetry?range=30d", "/admin/energy", "/admin/energy?range=365d&by=model",
		"/admin/users?q=bench9999", "/admin/users?page=100", "/admin/users/" + adaID, "/admin/audit/records/" + recs.Records[0].RequestID, "/admin/groups", "/admin/groups/" + groupID,
		"/admin/requests", "/admin/audit", "/admin/audit?text=bench", "/admin/audit/actions",
		"/login", "/chat", "/admin/nodes", "/admin/models", "/admin/keys", "/admin/gpus"} {
		b.Run(path, func(b *testing.B) {
			var lat []time.Duration
			for b.Loop() {
				start := time.Now()
				req, _ := http.NewRequest("GET", c.DataPlaneURL+path, nil)
				req.Header.Set("Accept", "text/html")
				resp, err := br.http.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("%s: %d", path, resp.StatusCode)
				}
				lat = append(lat, time.Since(start))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}
