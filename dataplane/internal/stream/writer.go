package stream

import (
	"errors"
	"io"
	"net/http"
	"time"
)

// flusher writes whole frames and flushes each one to the client.
type flusher struct {
	w            io.Writer
	rc           *http.ResponseController
	writeTimeout time.Duration
	buf          []byte
	// deadlineSet is when the write deadline was last moved.
	deadlineSet time.Time
}

// deadlineSlack is the share of the write timeout by which the deadline may
// lag: moving it costs a timer update in the runtime's poller, so a stream
// moves it once per writeTimeout/deadlineSlack rather than on every frame.
const deadlineSlack = 16

func newFlusher(w http.ResponseWriter, writeTimeout time.Duration) flusher {
	return flusher{w: w, rc: http.NewResponseController(w), writeTimeout: writeTimeout}
}

// frame writes b in one Write and flushes it. A write deadline, when configured,
// keeps a client that stopped reading from holding a backend slot forever:
// every write has at least writeTimeout*(1-1/deadlineSlack) to complete.
func (f *flusher) frame(b []byte) error {
	if f.writeTimeout > 0 {
		if now := time.Now(); now.Sub(f.deadlineSet) >= f.writeTimeout/deadlineSlack {
			f.deadlineSet = now
			// Not every ResponseWriter supports deadlines (httptest's does not);
			// the deadline is a safety net, not a requirement.
			_ = f.rc.SetWriteDeadline(now.Add(f.writeTimeout))
		}
	}
	if _, err := f.w.Write(b); err != nil {
		return err
	}
	if err := f.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}

// SSEWriter writes server-sent events to a client.
type SSEWriter struct {
	f flusher
}

// NewSSEWriter returns a writer of events to w. Call SetSSEHeaders before the
// first event. writeTimeout bounds each write; 0 means none.
func NewSSEWriter(w http.ResponseWriter, writeTimeout time.Duration) *SSEWriter {
	return &SSEWriter{f: newFlusher(w, writeTimeout)}
}

// SetSSEHeaders sets the headers of an event stream.
func SetSSEHeaders(h http.Header) {
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	// Proxies such as nginx buffer responses unless told not to.
	h.Set("X-Accel-Buffering", "no")
}

// Data writes one event whose data is b (which must not contain a newline, as
// compact JSON never does) and flushes it.
func (s *SSEWriter) Data(b []byte) error {
	buf := append(s.f.buf[:0], "data: "...)
	buf = append(buf, b...)
	buf = append(buf, '\n', '\n')
	s.f.buf = buf
	return s.f.frame(buf)
}

// Event writes one named event ("event: name" then "data: b").
func (s *SSEWriter) Event(name string, b []byte) error {
	buf := append(s.f.buf[:0], "event: "...)
	buf = append(buf, name...)
	buf = append(buf, "\ndata: "...)
	buf = append(buf, b...)
	buf = append(buf, '\n', '\n')
	s.f.buf = buf
	return s.f.frame(buf)
}

// Raw writes pre-framed bytes (one or more complete events) and flushes them.
func (s *SSEWriter) Raw(b []byte) error { return s.f.frame(b) }

// NDJSONWriter writes newline-delimited JSON to a client.
type NDJSONWriter struct {
	f flusher
}

// NewNDJSONWriter returns a writer of lines to w. writeTimeout bounds each write;
// 0 means none.
func NewNDJSONWriter(w http.ResponseWriter, writeTimeout time.Duration) *NDJSONWriter {
	return &NDJSONWriter{f: newFlusher(w, writeTimeout)}
}

// SetNDJSONHeaders sets the headers of an NDJSON stream.
func SetNDJSONHeaders(h http.Header) {
	h.Set("Content-Type", "application/x-ndjson")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
}

// Line writes b followed by a newline and flushes it.
func (n *NDJSONWriter) Line(b []byte) error {
	buf := append(n.f.buf[:0], b...)
	buf = append(buf, '\n')
	n.f.buf = buf
	return n.f.frame(buf)
}
