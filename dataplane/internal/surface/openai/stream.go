package openai

import (
	"net/http"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
	"github.com/mindrouter/mindrouter/dataplane/internal/stream"
	"github.com/mindrouter/mindrouter/dataplane/internal/surface"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/openai"
)

// chunkEncoder writes canonical chunks as one dialect's events
// (openai.ChunkEncoder, openai.CompletionChunkEncoder).
type chunkEncoder interface {
	AppendChunk(dst []byte, c *canonical.Chunk) []byte
}

// sseSink writes a relay's chunks as server-sent events. Headers go out with
// the first event, so that an error before it is still an ordinary JSON error
// response with its own status.
type sseSink struct {
	w http.ResponseWriter
	// opening, when set, appends the events that go out right after the
	// headers (the Responses API's response.created and response.in_progress).
	opening func(dst []byte) []byte
	sw      *stream.SSEWriter
	enc     chunkEncoder
	buf     []byte
	adm     relay.Admission
	started bool
	// cur holds the chunk being encoded: handing the encoder (an interface)
	// a pointer to the argument would move every chunk to the heap.
	cur canonical.Chunk
}

func (k *sseSink) Admitted(a relay.Admission) { k.adm = a }

func (k *sseSink) start() {
	if k.started {
		return
	}
	k.started = true
	h := k.w.Header()
	stream.SetSSEHeaders(h)
	surface.AdmissionHeaders(h, k.adm)
	k.w.WriteHeader(http.StatusOK)
	if k.opening != nil {
		_ = k.sw.Raw(k.opening(nil))
	}
}

func (k *sseSink) Chunk(c canonical.Chunk) error {
	k.cur = c
	k.buf = k.enc.AppendChunk(k.buf[:0], &k.cur)
	if len(k.buf) == 0 {
		return nil
	}
	k.start()
	return k.sw.Raw(k.buf)
}

// stream runs a streamed request through run and ends the stream: with
// [DONE] (after whatever tail appends, e.g. a summed usage event) on success,
// with an error event when the stream had started, or with an ordinary error
// response when it had not.
func (s *Surface) stream(w http.ResponseWriter, r *http.Request, enc chunkEncoder, run func(relay.Sink) error, tail func([]byte) []byte) {
	sink := &sseSink{w: w, sw: stream.NewSSEWriter(w, s.cfg.WriteTimeout), enc: enc}
	err := run(sink)
	switch {
	case err != nil && !sink.started:
		s.WriteError(w, r, err)
	case err != nil:
		s.writeStreamError(r, sink.sw, err)
	default:
		sink.start()
		b := sink.buf[:0]
		if tail != nil {
			b = tail(b)
		}
		_ = sink.sw.Raw(openai.AppendDone(b))
	}
}
