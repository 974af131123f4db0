package ollama_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
	"github.com/mindrouter/mindrouter/dataplane/internal/stream"
)

// TestStreamSendsQueuePositionHeaderWhileWaiting: NDJSON has no comments, so
// only the headers go out early; the lines follow the grant.
func TestStreamSendsQueuePositionHeaderWhileWaiting(t *testing.T) {
	t.Parallel()
	g := newGateway(t, sim(t, 1, enginesim.EngineOllama, nil))
	g.fake.SetQueueUpdates(
		relay.QueueUpdate{Position: 4, EstimatedWait: 2 * time.Second},
		relay.QueueUpdate{Position: 2},
	)
	admit := g.fake.HoldAdmits()
	defer admit()
	resp := g.post(t, "/api/chat", `{"model":"llama3.2","messages":[{"role":"user","content":"hello"}]}`)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "4", resp.Header.Get(stream.QueuePositionHeader), "the first update's position")
	assert.Equal(t, "2000", resp.Header.Get(stream.QueueEtaHeader))
	admit()
	lines := readLines(t, resp)
	require.NotEmpty(t, lines)
	assert.Equal(t, true, lines[len(lines)-1]["done"])
}
