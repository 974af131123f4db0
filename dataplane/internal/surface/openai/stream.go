package openai

import (
	"net/http"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
	"github.com/mindrouter/mindrouter/dataplane/internal/stream"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/openai"
)

// sseSink writes a relay's chunks as chat.completion.chunk events. Headers go
// out with the first event, so that an error before it is still an ordinary
// JSON error response with its own status.
type sseSink struct {
	w       http.ResponseWriter
	sw      *stream.SSEWriter
	enc     *openai.ChunkEncoder
	buf     []byte
	adm     relay.Admission
	started bool
}

func (k *sseSink) Admitted(a relay.Admission) { k.adm = a }

func (k *sseSink) start() {
	if k.started {
		return
	}
	k.started = true
	h := k.w.Header()
	stream.SetSSEHeaders(h)
	admissionHeaders(h, k.adm)
	k.w.WriteHeader(http.StatusOK)
}

func (k *sseSink) Chunk(c canonical.Chunk) error {
	k.buf = k.enc.AppendChunk(k.buf[:0], &c)
	if len(k.buf) == 0 {
		return nil
	}
	k.start()
	return k.sw.Raw(k.buf)
}

func (s *Surface) stream(w http.ResponseWriter, r *http.Request, call relay.Call, meta openai.Meta) {
	sink := &sseSink{
		w:   w,
		sw:  stream.NewSSEWriter(w, s.cfg.WriteTimeout),
		enc: openai.NewChunkEncoder(meta, call.Request.IncludeUsage),
	}
	_, err := s.relay.ChatStream(r.Context(), call, sink)
	switch {
	case err != nil && !sink.started:
		s.WriteError(w, r, err)
	case err != nil:
		s.writeStreamError(r, sink.sw, err)
	default:
		sink.start()
		_ = sink.sw.Raw(openai.AppendDone(sink.buf[:0]))
	}
}
