package server

import (
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
)

// guardBody bounds request bodies in size and in time.
//
// Size: a body over MaxBodyBytes is refused at once when Content-Length says
// so, otherwise when the handler reads past the limit (http.MaxBytesError,
// which the surfaces map to 413).
//
// Time: a body must arrive within BodyReadTimeout plus one second for every
// BodyMinRate bytes received so far, so a large upload at a sane rate always
// finishes while a client trickling bytes is cut off soon after
// BodyReadTimeout. The deadline is the connection's read deadline, which
// net/http clears once the body is read.
//
// An answer written before the body was read to its end (a missing key, a
// refusal) closes the connection instead of letting net/http drain the rest
// of the body first: a client that sends its body slowly gets its answer
// at once and cannot hold the connection open.
func (s *Server) guardBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			next.ServeHTTP(w, r)
			return
		}
		if r.ContentLength > s.opts.MaxBodyBytes {
			w.Header().Set("Connection", "close")
			s.writeError(w, r, &canonical.Error{Kind: canonical.KindTooLarge,
				Message: fmt.Sprintf("request body is larger than %d bytes", s.opts.MaxBodyBytes)})
			return
		}
		body := &timedBody{
			rc:      http.NewResponseController(w),
			src:     http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes),
			start:   s.opts.Now(),
			timeout: s.opts.BodyReadTimeout,
			rate:    s.opts.BodyMinRate,
		}
		if err := body.extend(); err != nil {
			s.opts.Log.DebugContext(r.Context(), "body read deadline not supported", "error", err)
		}
		r.Body = body
		next.ServeHTTP(&closeUnread{ResponseWriter: w, body: body}, r)
	})
}

// timedBody moves the connection's read deadline on as the body arrives.
type timedBody struct {
	rc      *http.ResponseController
	src     io.ReadCloser
	start   time.Time
	timeout time.Duration
	rate    int64
	read    int64
	eof     bool
}

// extend sets the read deadline for what has arrived so far.
func (b *timedBody) extend() error {
	allowed := b.timeout + time.Duration(b.read)*time.Second/time.Duration(b.rate)
	return b.rc.SetReadDeadline(b.start.Add(allowed))
}

func (b *timedBody) Read(p []byte) (int, error) {
	n, err := b.src.Read(p)
	b.read += int64(n)
	switch {
	case err == io.EOF:
		b.eof = true
	case err != nil:
		return n, bodyReadError(err, b.read)
	case n > 0:
		_ = b.extend()
	}
	return n, err
}

func (b *timedBody) Close() error { return b.src.Close() }

// bodyReadError says that a body stopped arriving in time; other read errors
// pass as they are.
func bodyReadError(err error, read int64) error {
	if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
		return &canonical.Error{Kind: canonical.KindInvalidRequest, Status: http.StatusRequestTimeout, Code: "body_timeout",
			Message: fmt.Sprintf("the request body arrived too slowly (%d bytes before the deadline)", read), Err: err}
	}
	return err
}

// closeUnread marks the connection for closing when an answer starts before
// its request's body was read to the end.
type closeUnread struct {
	http.ResponseWriter
	body    *timedBody
	started bool
}

func (c *closeUnread) start() {
	if !c.started {
		c.started = true
		if !c.body.eof {
			c.Header().Set("Connection", "close")
		}
	}
}

func (c *closeUnread) WriteHeader(code int) {
	c.start()
	c.ResponseWriter.WriteHeader(code)
}

func (c *closeUnread) Write(p []byte) (int, error) {
	c.start()
	return c.ResponseWriter.Write(p)
}

// Flush flushes the underlying writer (for code that type-asserts http.Flusher).
func (c *closeUnread) Flush() {
	c.start()
	_ = http.NewResponseController(c.ResponseWriter).Flush()
}

// Unwrap returns the underlying writer, for http.ResponseController.
func (c *closeUnread) Unwrap() http.ResponseWriter { return c.ResponseWriter }
