package openai

import (
	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
	"github.com/mindrouter/mindrouter/dataplane/internal/stream"
)

// Queued starts the stream while the request waits: the first update sends
// the headers (with the queue position and estimated wait), every update an SSE
// comment that SDKs skip. An error after this is an in-stream error event.
func (k *sseSink) Queued(u relay.QueueUpdate) {
	if !k.started {
		stream.SetQueueHeaders(k.w.Header(), u.Position, u.EstimatedWait)
		k.start()
	}
	k.buf = stream.AppendQueueComment(k.buf[:0], u.Position, u.EstimatedWait)
	_ = k.sw.Raw(k.buf) // a client that left cancels the request's context
}
