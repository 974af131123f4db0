package openai_test

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/mindrouter/mindrouter/dataplane/internal/cpclient/cpclienttest"
	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
	"github.com/mindrouter/mindrouter/dataplane/internal/stream"
)

func queueUpdates() []relay.QueueUpdate {
	return []relay.QueueUpdate{
		{Position: 3, EstimatedWait: 1200 * time.Millisecond},
		{Position: 1, EstimatedWait: 400 * time.Millisecond},
	}
}

// TestStreamSendsQueuePositionWhileWaiting: a streaming client has its headers
// and one SSE comment per queue update while the control plane still holds the
// request, and the answer after.
func TestStreamSendsQueuePositionWhileWaiting(t *testing.T) {
	t.Parallel()
	g := newGateway(t, sim(t, 1, enginesim.EngineVLLM, nil))
	g.fake.SetQueueUpdates(queueUpdates()...)
	admit := g.fake.HoldAdmits()
	defer admit()

	resp := g.post(t, hello+`,"stream":true}`) // returns with the headers, while admission waits
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "3", resp.Header.Get(stream.QueuePositionHeader))
	assert.Equal(t, "1200", resp.Header.Get(stream.QueueEtaHeader))
	assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	br := bufio.NewReader(resp.Body)
	for _, want := range []string{": queue position=3 eta_ms=1200", "", ": queue position=1 eta_ms=400", ""} {
		line, err := br.ReadString('\n')
		require.NoError(t, err)
		require.Equal(t, want, strings.TrimRight(line, "\n"))
	}
	assert.Equal(t, 1, g.fake.AdmitStreams())

	admit()
	resp.Body = readCloser{br, resp.Body}
	events := readStream(t, resp)
	require.NotEmpty(t, events)
	assert.Equal(t, "[DONE]", events[len(events)-1].data)
}

// TestNonStreamedKeepsTheFinalHeader: a non-streamed answer waits for the lease
// and carries the position it had when queued.
func TestNonStreamedKeepsTheFinalHeader(t *testing.T) {
	t.Parallel()
	g := newGateway(t, sim(t, 1, enginesim.EngineVLLM, nil))
	g.fake.SetQueueUpdates(queueUpdates()...)
	g.fake.SetQueuePosition(3)
	resp := g.post(t, hello+`}`)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "3", resp.Header.Get(stream.QueuePositionHeader))
	assert.Empty(t, resp.Header.Get(stream.QueueEtaHeader))
	assert.Zero(t, g.fake.AdmitStreams(), "unary Admit: nobody would hear the updates")
}

// TestQueueTimeoutAfterEarlyHeadersIsAnErrorEvent: once the headers went out,
// a refusal ends the stream with an error event instead of a status.
func TestQueueTimeoutAfterEarlyHeadersIsAnErrorEvent(t *testing.T) {
	t.Parallel()
	g := newGateway(t, sim(t, 1, enginesim.EngineVLLM, nil))
	g.fake.SetQueueUpdates(queueUpdates()[0])
	g.fake.FailAdmits(queueTimeout())
	resp := g.post(t, hello+`,"stream":true}`)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	events := readStream(t, resp)
	require.NotEmpty(t, events)
	last := events[len(events)-1]
	require.Contains(t, last.obj, "error", "the stream ends with an error event: %s", last.data)
}

// TestOlderControlPlaneWithoutAdmitStream: streaming still works against a
// control plane that answers AdmitStream with Unimplemented.
func TestOlderControlPlaneWithoutAdmitStream(t *testing.T) {
	t.Parallel()
	g := newGateway(t, sim(t, 1, enginesim.EngineVLLM, nil))
	g.fake.DisableAdmitStream()
	g.fake.SetQueuePosition(2)
	for range 2 {
		resp := g.post(t, hello+`,"stream":true}`)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "2", resp.Header.Get(stream.QueuePositionHeader), "the final header, as before")
		events := readStream(t, resp)
		assert.Equal(t, "[DONE]", events[len(events)-1].data)
	}
	assert.Len(t, g.fake.Admits(), 2)
}

type readCloser struct {
	io.Reader
	io.Closer
}

func queueTimeout() error {
	return cpclienttest.Refusal(codes.Unavailable, relay.ReasonQueueTimeout, "timed out waiting for a backend", time.Second)
}
