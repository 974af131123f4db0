package ollama

import (
	"net/http"

	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
	"github.com/mindrouter/mindrouter/dataplane/internal/stream"
)

// Queued sends the headers, with the queue position and estimated wait, at
// the first update: NDJSON has no comments, so later updates are not sent. An
// error after this is an in-stream {"error": …} line.
func (k *ndjsonSink) Queued(u relay.QueueUpdate) {
	if k.started {
		return
	}
	stream.SetQueueHeaders(k.w.Header(), u.Position, u.EstimatedWait)
	k.start()
	_ = http.NewResponseController(k.w).Flush() // a client that left cancels the request's context
}
