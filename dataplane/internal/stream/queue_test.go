package stream_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/mindrouter/mindrouter/dataplane/internal/stream"
)

func TestQueueHeadersAndComment(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pos              int32
		eta              time.Duration
		comment, etaHead string
	}{
		{3, 1200 * time.Millisecond, ": queue position=3 eta_ms=1200\n\n", "1200"},
		{1, 0, ": queue position=1 eta_ms=0\n\n", ""},
		{12, 1500 * time.Microsecond, ": queue position=12 eta_ms=1\n\n", "1"},
	} {
		h := http.Header{}
		stream.SetQueueHeaders(h, tc.pos, tc.eta)
		assert.Equal(t, tc.comment, string(stream.AppendQueueComment(nil, tc.pos, tc.eta)))
		assert.Equal(t, tc.etaHead, h.Get(stream.QueueEtaHeader))
		assert.NotEmpty(t, h.Get(stream.QueuePositionHeader))
	}
}
