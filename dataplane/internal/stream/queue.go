package stream

import (
	"net/http"
	"strconv"
	"time"
)

// Headers of a streamed answer that waited in the queue, sent before the
// first event (docs/api.md).
const (
	QueuePositionHeader = "X-Mindrouter-Queue-Position"
	QueueEtaHeader      = "X-Mindrouter-Queue-Eta-Ms"
)

// SetQueueHeaders sets the queue position and, when known (eta > 0), the
// estimated wait in milliseconds.
func SetQueueHeaders(h http.Header, position int32, eta time.Duration) {
	h.Set(QueuePositionHeader, strconv.Itoa(int(position)))
	if eta > 0 {
		h.Set(QueueEtaHeader, strconv.FormatInt(eta.Milliseconds(), 10))
	}
}

// AppendQueueComment appends the SSE comment that tells a waiting client its
// place: ": queue position=3 eta_ms=1200" and a blank line. SSE clients and
// SDKs skip comments; eta_ms is 0 while the gateway has no estimate.
func AppendQueueComment(dst []byte, position int32, eta time.Duration) []byte {
	dst = append(dst, ": queue position="...)
	dst = strconv.AppendInt(dst, int64(position), 10)
	dst = append(dst, " eta_ms="...)
	dst = strconv.AppendInt(dst, eta.Milliseconds(), 10)
	return append(dst, "\n\n"...)
}
