package ollama

import (
	"bytes"
	"net/http"
	"time"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
	"github.com/mindrouter/mindrouter/dataplane/internal/stream"
	"github.com/mindrouter/mindrouter/dataplane/internal/surface"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/ollama"
)

// ndjsonSink writes a relay's chunks as NDJSON lines. Headers go out with the
// first line, so that an error before it is still an ordinary JSON error
// response with its own status.
type ndjsonSink struct {
	w       http.ResponseWriter
	nw      *stream.NDJSONWriter
	enc     *ollama.ChunkEncoder
	now     func() time.Time
	buf     []byte
	adm     relay.Admission
	started bool
	// admitted and first time the last admission and the first visible chunk.
	admitted, first time.Time
}

func (k *ndjsonSink) Admitted(a relay.Admission) {
	k.adm = a
	k.admitted = k.now()
}

func (k *ndjsonSink) start() {
	if k.started {
		return
	}
	k.started = true
	h := k.w.Header()
	stream.SetNDJSONHeaders(h)
	surface.AdmissionHeaders(h, k.adm)
	k.w.WriteHeader(http.StatusOK)
}

func (k *ndjsonSink) Chunk(c canonical.Chunk) error {
	if k.first.IsZero() && visible(&c) {
		k.first = k.now()
	}
	k.buf = k.enc.AppendChunk(k.buf[:0], &c)
	return k.flush()
}

// flush writes the encoded lines in buf, each flushed on its own.
func (k *ndjsonSink) flush() error {
	if len(k.buf) == 0 {
		return nil
	}
	k.start()
	rest := k.buf
	for len(rest) > 0 {
		line, tail, _ := bytes.Cut(rest, []byte{'\n'})
		if err := k.nw.Line(line); err != nil {
			return err
		}
		rest = tail
	}
	return nil
}

func (s *Surface) stream(w http.ResponseWriter, r *http.Request, call relay.Call, meta ollama.Meta, shape ollama.Shape, start time.Time) {
	enc := ollama.NewChunkEncoder(meta)
	if shape == ollama.ShapeGenerate {
		enc = ollama.NewGenerateChunkEncoder(meta)
	}
	sink := &ndjsonSink{w: w, nw: stream.NewNDJSONWriter(w, s.cfg.WriteTimeout), enc: enc, now: s.cfg.Now}
	_, err := s.relay.ChatStream(r.Context(), call, sink)
	switch {
	case err != nil && !sink.started:
		s.writeError(w, r, err, call.Request.Model)
	case err != nil:
		s.writeStreamError(r, sink, err)
	default:
		enc.SetTimings(timings(start, sink.admitted, sink.first, s.cfg.Now()))
		sink.buf = enc.AppendEnd(sink.buf[:0])
		_ = sink.flush()
	}
}
