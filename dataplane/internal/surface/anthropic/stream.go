package anthropic

import (
	"net/http"
	"sync"
	"time"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
	"github.com/mindrouter/mindrouter/dataplane/internal/stream"
	"github.com/mindrouter/mindrouter/dataplane/internal/surface"
	"github.com/mindrouter/mindrouter/dataplane/internal/tokens"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/anthropic"
)

// sseSink writes a relay's chunks as Anthropic events. Headers and
// message_start go out with the first chunk, or when the first ping is due
// after the lease was granted, so that a refusal before that (no key, unknown
// model, rate limit, full queue) is still an ordinary error response with its
// own status.
//
// Pings come from a timer owned by the sink: it fires every ping interval and
// writes a ping only when nothing else was written since the last firing, so a
// busy stream costs one flag per chunk and no timer operations. The mutex
// serialises the timer's writes with the relay's.
type sseSink struct {
	s   *Surface
	w   http.ResponseWriter
	r   *http.Request
	enc *anthropic.StreamEncoder

	mu      sync.Mutex
	sw      *stream.SSEWriter
	buf     []byte
	adm     relay.Admission
	timer   *time.Timer
	started bool
	wrote   bool // something was written since the timer last fired
	done    bool // the handler is finishing: the timer must not write
	err     error
}

func (s *Surface) newSink(w http.ResponseWriter, r *http.Request, call relay.Call, meta anthropic.Meta) *sseSink {
	return &sseSink{
		s: s, w: w, r: r,
		sw:  stream.NewSSEWriter(w, s.cfg.WriteTimeout),
		enc: anthropic.NewStreamEncoder(meta, tokens.Prompt(call.Request)),
	}
}

// Admitted remembers the lease and starts the ping timer at the first one.
func (k *sseSink) Admitted(a relay.Admission) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.adm = a
	if k.timer == nil && !k.done {
		k.timer = time.AfterFunc(k.s.cfg.PingInterval, k.tick)
	}
}

// tick runs on the timer's goroutine.
func (k *sseSink) tick() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.done || k.err != nil {
		return
	}
	if !k.wrote {
		buf := k.buf[:0]
		if !k.started {
			buf = k.begin(buf)
		} else {
			buf = anthropic.AppendPing(buf)
		}
		k.write(buf)
	}
	k.wrote = false
	k.timer.Reset(k.s.cfg.PingInterval)
}

// begin writes the headers and returns buf with message_start and a ping.
func (k *sseSink) begin(buf []byte) []byte {
	k.started = true
	h := k.w.Header()
	stream.SetSSEHeaders(h)
	surface.AdmissionHeaders(h, k.adm)
	setRequestID(h, k.r)
	k.w.WriteHeader(http.StatusOK)
	return k.enc.AppendStart(buf)
}

// write sends buf and keeps it for reuse; a failed write ends the stream.
func (k *sseSink) write(buf []byte) {
	k.buf = buf
	if len(buf) == 0 {
		return
	}
	k.wrote = true
	if err := k.sw.Raw(buf); err != nil {
		k.err = err
	}
}

// Chunk writes one chunk's events. An error means the client is gone, or that
// the engine broke the tool-call order, which ends the stream.
func (k *sseSink) Chunk(c canonical.Chunk) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.err != nil {
		return k.err
	}
	buf := k.buf[:0]
	if !k.started {
		buf = k.begin(buf)
	}
	buf, err := k.enc.AppendChunk(buf, &c)
	k.write(buf)
	if err != nil {
		return &canonical.Error{Kind: canonical.KindBackend, Code: "backend_error", Message: err.Error(), Err: err}
	}
	return k.err
}

// stop keeps the timer from writing again; it returns whether the stream started.
func (k *sseSink) stop() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.done = true
	if k.timer != nil {
		k.timer.Stop()
	}
	return k.started
}

func (s *Surface) stream(w http.ResponseWriter, r *http.Request, call relay.Call, meta anthropic.Meta) {
	sink := s.newSink(w, r, call, meta)
	_, err := s.relay.ChatStream(r.Context(), call, sink)
	started := sink.stop()
	switch {
	case err != nil && !started:
		s.WriteError(w, r, err)
	case err != nil:
		if b := s.streamError(r, err); b != nil {
			_ = sink.sw.Raw(b)
		}
	default:
		buf := sink.buf[:0]
		if !started {
			buf = sink.begin(buf)
		}
		_ = sink.sw.Raw(sink.enc.AppendFinish(buf))
	}
}
