package ctl_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	auditv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/audit/v1"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// TestCLIAudit ingests records as a data plane does and reads them back with
// audit search, show, export and actions.
func TestCLIAudit(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	addr, _, key := startControlPlaneIn(t, dir)
	token, err := os.ReadFile(filepath.Join(dir, "cluster-token"))
	require.NoError(t, err)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-mindrouter-cluster-token", strings.TrimSpace(string(token)))
	stream, err := controlplanev1.NewAuditIngestServiceClient(conn).Ingest(ctx)
	require.NoError(t, err)
	require.NoError(t, stream.Send(&controlplanev1.IngestRequest{Seq: 1, Records: []*auditv1.Record{
		{RequestId: "cli-1", CreatedAt: timestamppb.Now(), Username: "ada", Surface: "openai", Model: "m", Status: "completed",
			StatusCode: 200, PromptText: "tell me about echidnas", ResponseText: "spiny", PromptTokens: 5, CompletionTokens: 1},
		{RequestId: "cli-2", CreatedAt: timestamppb.Now(), Username: "bob", Surface: "ollama", Model: "m", Status: "failed", StatusCode: 503},
	}}))
	_, err = stream.Recv()
	require.NoError(t, err)

	env := []string{"MINDROUTER_ADDR=" + addr, "MINDROUTER_API_KEY=" + key}
	run := func(args ...string) string {
		t.Helper()
		out, errOut, code := ctl(t, env, args...)
		require.Equal(t, 0, code, "mindrouterctl %v: %s", args, errOut)
		return out
	}
	out := run("audit", "search", "--surface", "ollama")
	assert.Regexp(t, `(?m)^REQUEST_ID\s+CREATED_AT\s+USERNAME`, out)
	assert.Contains(t, out, "cli-2")
	assert.NotContains(t, out, "cli-1")
	assert.Contains(t, run("audit", "search", "--text", "echidnas"), "cli-1")

	var shown struct {
		Record struct {
			ResponseText string `json:"response_text"`
		} `json:"record"`
	}
	require.NoError(t, json.Unmarshal([]byte(run("audit", "show", "cli-1", "-o", "json")), &shown))
	assert.Equal(t, "spiny", shown.Record.ResponseText)

	out = run("audit", "export", "--format", "jsonl", "--include-content")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2)
	assert.Contains(t, lines[0], `"prompt_text":"tell me about echidnas"`)
	out = run("audit", "export")
	assert.True(t, strings.HasPrefix(out, "request_id,created_at"), out)
	assert.NotContains(t, out, "echidnas", "no content unless asked")

	out = run("audit", "actions", "--action", "audit.")
	assert.Contains(t, out, "audit.read_content")
	assert.Contains(t, out, "audit.export_content")
}
