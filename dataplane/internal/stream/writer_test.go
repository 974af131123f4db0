package stream_test

import (
	"net/http/httptest"
	"testing"
	"time"

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

// deadlineRecorder records the write deadlines a writer sets.
type deadlineRecorder struct {
	*httptest.ResponseRecorder
	deadlines []time.Time
}

func (d *deadlineRecorder) SetWriteDeadline(t time.Time) error {
	d.deadlines = append(d.deadlines, t)
	return nil
}

// TestWriteDeadline: every write is bounded by the write timeout, and frames
// written in quick succession do not each move the deadline.
func TestWriteDeadline(t *testing.T) {
	t.Parallel()
	rec := &deadlineRecorder{ResponseRecorder: httptest.NewRecorder()}
	const timeout = time.Hour
	w := stream.NewSSEWriter(rec, timeout)
	start := time.Now()
	for range 100 {
		require.NoError(t, w.Data([]byte(`{}`)))
	}
	require.Len(t, rec.deadlines, 1, "one deadline for a burst of frames")
	require.False(t, rec.deadlines[0].Before(start.Add(timeout)))

	none := &deadlineRecorder{ResponseRecorder: httptest.NewRecorder()}
	require.NoError(t, stream.NewNDJSONWriter(none, 0).Line([]byte(`{}`)))
	require.Empty(t, none.deadlines, "0 means no deadline")
}
