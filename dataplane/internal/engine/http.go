package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// TransportConfig sizes the shared backend transport.
type TransportConfig struct {
	// DialTimeout bounds establishing a TCP connection; default 10s.
	DialTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for a backend's response headers:
	// for a stream that is roughly the time to the first token (including a
	// model load), for a non-streamed call the whole generation. Default 180s.
	ResponseHeaderTimeout time.Duration
	// MaxIdleConnsPerHost is how many idle connections to keep per backend;
	// default 256, so that bursts reuse connections instead of dialing.
	MaxIdleConnsPerHost int
	// IdleConnTimeout closes idle connections after this long; default 90s.
	IdleConnTimeout time.Duration
}

// NewTransport returns the transport all engines share. It has no overall
// timeout (streams last as long as they last; the request context bounds them),
// never uses an environment proxy (backends are internal), and leaves responses
// uncompressed so that streamed chunks are not held back by a decompressor.
func NewTransport(cfg TransportConfig) *http.Transport {
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 10 * time.Second
	}
	if cfg.ResponseHeaderTimeout <= 0 {
		cfg.ResponseHeaderTimeout = 180 * time.Second
	}
	if cfg.MaxIdleConnsPerHost <= 0 {
		cfg.MaxIdleConnsPerHost = 256
	}
	if cfg.IdleConnTimeout <= 0 {
		cfg.IdleConnTimeout = 90 * time.Second
	}
	d := &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		DialContext:           d.DialContext,
		MaxIdleConnsPerHost:   cfg.MaxIdleConnsPerHost,
		IdleConnTimeout:       cfg.IdleConnTimeout,
		ResponseHeaderTimeout: cfg.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}
}

// NewClient wraps a transport (NewTransport, with the tracing instrumentation
// around it: tracing.Transport) in an HTTP client. The client has no Timeout:
// contexts bound calls.
func NewClient(rt http.RoundTripper) *http.Client {
	return &http.Client{Transport: rt}
}

// MaxErrorBody is how much of a backend's error body is read for its message.
const MaxErrorBody = 64 << 10

// MaxResponseBody bounds a non-streamed backend answer.
const MaxResponseBody = 64 << 20

// Post sends a JSON body and returns the response when the backend answered
// 2xx. A transport failure or a 5xx is a retryable *Error, a 4xx a refusal
// carrying the message errMessage extracts from the body; a cancelled ctx
// returns its error (or, for an idle timeout, a retryable *Error).
func Post(ctx context.Context, c *http.Client, url string, body []byte, errMessage func([]byte) string) (*http.Response, error) {
	return PostAs(ctx, c, url, "application/json", body, errMessage)
}

// PostAs is Post for a body of the given Content-Type (a multipart upload).
func PostAs(ctx context.Context, c *http.Client, url, contentType string, body []byte, errMessage func([]byte) string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, &Error{Message: "invalid backend URL", Err: err}
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := c.Do(req)
	if err != nil {
		return nil, CallError(ctx, "send request", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, MaxErrorBody))
		_ = resp.Body.Close()
		return nil, &Error{Retryable: resp.StatusCode >= 500, Status: resp.StatusCode, Message: errMessage(b)}
	}
	return resp, nil
}

// ReadBody reads a non-streamed answer of at most MaxResponseBody bytes.
func ReadBody(ctx context.Context, resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBody+1))
	if err != nil {
		return nil, CallError(ctx, "read answer", err)
	}
	if len(b) > MaxResponseBody {
		return nil, &Error{Retryable: true, Message: fmt.Sprintf("answer over %d bytes", MaxResponseBody)}
	}
	return b, nil
}

// CallError classifies an error met while calling or reading a backend: the
// caller's cancellation is returned as the context's error, anything else
// (including an idle timeout) is a retryable backend failure.
func CallError(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		if cause := context.Cause(ctx); errors.Is(cause, ErrIdle) {
			return &Error{Retryable: true, Message: "the backend went silent", Err: cause}
		}
		return fmt.Errorf("%s: %w", what, ctx.Err())
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return &Error{Retryable: true, Message: "the backend timed out", Err: err}
	}
	return &Error{Retryable: true, Message: "the backend connection failed", Err: err}
}

// IdleWatch cancels a call whose backend sends nothing for too long.
type IdleWatch struct {
	timer  *time.Timer
	d      time.Duration
	cancel context.CancelCauseFunc
}

// WatchIdle returns a context that is cancelled with cause ErrIdle when Touch is
// not called for d, and the watch. The caller must call Stop, from the goroutine
// that calls Touch, when the call ends. d <= 0 watches nothing.
func WatchIdle(ctx context.Context, d time.Duration) (context.Context, *IdleWatch) {
	ctx, cancel := context.WithCancelCause(ctx)
	w := &IdleWatch{d: d, cancel: cancel}
	if d > 0 {
		w.timer = time.AfterFunc(d, func() { cancel(ErrIdle) })
	}
	return ctx, w
}

// Touch records that the backend sent something.
func (w *IdleWatch) Touch() {
	if w.timer != nil {
		w.timer.Reset(w.d)
	}
}

// Stop ends the watch and releases the context.
func (w *IdleWatch) Stop() {
	if w.timer != nil {
		w.timer.Stop()
	}
	w.cancel(context.Canceled)
}
