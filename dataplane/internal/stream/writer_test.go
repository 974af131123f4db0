package stream_test

import (
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/stream"
)

func TestSSEWriter(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	stream.SetSSEHeaders(rec.Header())
	w := stream.NewSSEWriter(rec, 0)
	require.NoError(t, w.Data([]byte(`{"a":1}`)))
	require.True(t, rec.Flushed)
	require.NoError(t, w.Event("ping", []byte(`{}`)))
	require.NoError(t, w.Raw([]byte("data: [DONE]\n\n")))
	require.Equal(t, "data: {\"a\":1}\n\nevent: ping\ndata: {}\n\ndata: [DONE]\n\n", rec.Body.String())
	require.Equal(t, "text/event-stream", rec.Header().Get("Content-Type"))
}

func TestNDJSONWriter(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	stream.SetNDJSONHeaders(rec.Header())
	w := stream.NewNDJSONWriter(rec, 0)
	require.NoError(t, w.Line([]byte(`{"done":false}`)))
	require.NoError(t, w.Line([]byte(`{"done":true}`)))
	require.True(t, rec.Flushed)
	require.Equal(t, "{\"done\":false}\n{\"done\":true}\n", rec.Body.String())
	require.Equal(t, "application/x-ndjson", rec.Header().Get("Content-Type"))
}
