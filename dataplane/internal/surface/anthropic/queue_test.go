package anthropic_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
	"github.com/mindrouter/mindrouter/dataplane/internal/stream"
	surface "github.com/mindrouter/mindrouter/dataplane/internal/surface/anthropic"
)

// TestStreamSendsQueuePositionWhileWaiting: the headers, message_start and one
// comment per update reach the client while admission waits; the stream then
// folds into the whole message.
func TestStreamSendsQueuePositionWhileWaiting(t *testing.T) {
	t.Parallel()
	_, b := sim(t, 1, enginesim.EngineVLLM, enginesim.Config{})
	g := newGateway(t, surface.Config{PingInterval: time.Hour}, b)
	g.fake.SetQueueUpdates(
		relay.QueueUpdate{Position: 2, EstimatedWait: 900 * time.Millisecond},
		relay.QueueUpdate{Position: 1},
	)
	admit := g.fake.HoldAdmits()
	defer admit()
	resp := g.post(t, hello+`,"stream":true}`)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "2", resp.Header.Get(stream.QueuePositionHeader))
	assert.Equal(t, "900", resp.Header.Get(stream.QueueEtaHeader))

	want := []byte(": queue position=2 eta_ms=900\n\n: queue position=1 eta_ms=0\n\n")
	var got []byte
	buf := make([]byte, 4096)
	for !bytes.Contains(got, want) {
		n, err := resp.Body.Read(buf)
		require.NoError(t, err, "read so far: %s", got)
		got = append(got, buf[:n]...)
	}
	assert.Contains(t, string(got), "event: message_start", "message_start goes out with the headers")

	admit()
	rest, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	resp.Body = io.NopCloser(bytes.NewReader(append(got, rest...)))
	m := readStream(t, resp)
	assert.True(t, m.Complete)
	require.Len(t, m.Blocks, 1)
	assert.Nil(t, m.Error)
}
