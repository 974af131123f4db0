package server

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	auditv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/audit/v1"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// TestAuditTrailOverRESTAndGRPC ingests records as a data plane does, reads
// them back as an auditor over REST, and checks that reads of content and
// admin changes land in the admin-action log with who and from where.
func TestAuditTrailOverRESTAndGRPC(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	conn := dial(t, s.grpcAddr)
	ctx := metadata.AppendToOutgoingContext(context.Background(), ClusterTokenHeader, testClusterToken)
	stream, err := controlplanev1.NewAuditIngestServiceClient(conn).Ingest(ctx)
	require.NoError(t, err)
	img := strings.Repeat("ab", 32)
	batch := &controlplanev1.IngestRequest{Seq: 1, ReplicaId: "dp-test", Records: []*auditv1.Record{
		{RequestId: "req-a", CreatedAt: timestamppb.Now(), UserId: 5, Username: "student", Group: "student", Surface: "openai",
			Endpoint: "/v1/chat/completions", Model: "m", Status: "completed", StatusCode: 200,
			PromptText: "what is a wombat", ResponseText: "a marsupial", PromptTokens: 4, CompletionTokens: 2, ArtifactHashes: []string{img}},
		{RequestId: "req-b", CreatedAt: timestamppb.Now(), UserId: 5, Username: "student", Group: "student", Surface: "ollama",
			Endpoint: "/api/chat", Model: "m", Status: "failed", StatusCode: 503, Error: "no backend"},
	}, Artifacts: []*auditv1.Artifact{{Sha256: img, ContentType: "image/png", SizeBytes: 2, Data: []byte("hi")}}}
	require.NoError(t, stream.Send(batch))
	ack, err := stream.Recv()
	require.NoError(t, err)
	assert.Equal(t, uint64(1), ack.GetSeq())
	require.NoError(t, stream.Send(batch), "a re-sent batch is acknowledged and stored once")
	_, err = stream.Recv()
	require.NoError(t, err)
	require.NoError(t, stream.CloseSend())

	auditor := "Bearer " + s.keys["auditor"]
	code, body := s.rest(t, http.MethodGet, "/api/admin/audit/search?text=wombat", "Authorization", auditor, "")
	require.Equal(t, http.StatusOK, code, body)
	var page struct {
		Records []map[string]any `json:"records"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &page))
	require.Len(t, page.Records, 1)
	assert.Equal(t, "req-a", page.Records[0]["request_id"])
	assert.Empty(t, page.Records[0]["prompt_text"], "search results carry no content")

	code, body = s.rest(t, http.MethodGet, "/api/admin/audit/search?surface=ollama&status=failed", "Authorization", auditor, "")
	require.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, `"req-b"`)
	assert.NotContains(t, body, `"req-a"`)

	code, body = s.rest(t, http.MethodGet, "/api/admin/audit/req-a", "Authorization", auditor, "")
	require.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, "a marsupial")
	assert.Contains(t, body, `"image/png"`)
	code, body = s.rest(t, http.MethodGet, "/api/admin/audit/artifacts/"+img, "Authorization", auditor, "")
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, "hi", body)
	code, _ = s.rest(t, http.MethodGet, "/api/admin/audit/nope", "Authorization", auditor, "")
	assert.Equal(t, http.StatusNotFound, code)

	code, body = s.rest(t, http.MethodGet, "/api/admin/audit/export?format=csv&include_content=true", "Authorization", auditor, "")
	require.Equal(t, http.StatusOK, code, body)
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 3)
	assert.Equal(t, "request_id", rows[0][0])
	assert.Equal(t, "req-a", rows[1][0])
	assert.Contains(t, rows[1], "what is a wombat")
	code, body = s.rest(t, http.MethodGet, "/api/admin/audit/export?format=jsonl&surface=ollama", "Authorization", auditor, "")
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, 1, strings.Count(body, "\n"))
	assert.Contains(t, body, `"request_id":"req-b"`)

	// Auditors read; nobody edits or deletes records through the API, and only
	// admins run retention.
	code, _ = s.rest(t, http.MethodPost, "/api/admin/audit/purge", "Authorization", auditor, "{}")
	assert.Equal(t, http.StatusForbidden, code)
	code, _ = s.rest(t, http.MethodDelete, "/api/admin/audit/req-a", "Authorization", "Bearer "+s.keys["admin"], "")
	assert.NotEqual(t, http.StatusOK, code)

	// An admin change over REST is recorded with the address it came from.
	req, err := http.NewRequest(http.MethodPatch, s.restURL+"/api/admin/groups/3", strings.NewReader(`{"rpm_limit": 77}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+s.keys["admin"])
	req.Header.Set("X-Forwarded-For", "198.51.100.9")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	code, body = s.rest(t, http.MethodGet, "/api/admin/audit/admin-actions?limit=50", "Authorization", auditor, "")
	require.Equal(t, http.StatusOK, code, body)
	var acts struct {
		Actions []map[string]any `json:"actions"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &acts))
	byAction := map[string]map[string]any{}
	for _, a := range acts.Actions {
		if _, seen := byAction[a["action"].(string)]; !seen {
			byAction[a["action"].(string)] = a
		}
	}
	require.Contains(t, byAction, "group.update")
	g := byAction["group.update"]
	assert.Equal(t, "198.51.100.9", g["client_ip"])
	assert.Equal(t, "admin", g["actor"])
	assert.Contains(t, g["after_json"], `"rpm_limit":77`)
	require.Contains(t, byAction, "audit.read_content")
	assert.Equal(t, "auditor", byAction["audit.read_content"]["actor"])
	assert.Equal(t, "req-a", byAction["audit.read_content"]["entity_id"])
	assert.Contains(t, byAction, "audit.export_content")
	assert.Contains(t, byAction, "audit.read_artifact")
}
