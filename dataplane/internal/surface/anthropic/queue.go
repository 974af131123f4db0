package anthropic

import (
	"time"

	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
	"github.com/mindrouter/mindrouter/dataplane/internal/stream"
)

// Queued starts the stream while the request waits: the first update sends
// the headers (with the queue position and estimated wait) and message_start,
// every update an SSE comment that SDKs skip, and pings keep the connection
// alive between them. An error after this is an in-stream error event.
func (k *sseSink) Queued(u relay.QueueUpdate) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.done || k.err != nil {
		return
	}
	buf := k.buf[:0]
	if !k.started {
		stream.SetQueueHeaders(k.w.Header(), u.Position, u.EstimatedWait)
		buf = k.begin(buf)
	}
	k.write(stream.AppendQueueComment(buf, u.Position, u.EstimatedWait))
	if k.timer == nil {
		k.timer = time.AfterFunc(k.s.cfg.PingInterval, k.tick)
	}
}
