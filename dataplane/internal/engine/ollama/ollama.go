package ollama

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/engine"
	"github.com/mindrouter/mindrouter/dataplane/internal/stream"
	wire "github.com/mindrouter/mindrouter/dataplane/internal/translate/ollama"
)

// Config configures the engine.
type Config struct {
	// Client is the shared backend client (engine.NewClient).
	Client *http.Client
	// IdleTimeout ends a stream whose backend sends nothing for this long; 0 never.
	IdleTimeout time.Duration
	// MaxLineBytes bounds one NDJSON line; 0 means stream.DefaultMaxFrame.
	MaxLineBytes int
	// Metrics counts tool_choice retries (NewMetrics); nil counts nothing.
	Metrics *Metrics
	// Logger is where answers lacking a required tool call are logged; nil
	// discards.
	Logger *slog.Logger
}

// Engine calls Ollama backends.
type Engine struct {
	cfg Config
}

// New returns an Ollama engine.
func New(cfg Config) *Engine {
	if cfg.Client == nil {
		cfg.Client = http.DefaultClient
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Engine{cfg: cfg}
}

var _ engine.Engine = (*Engine)(nil)

func (e *Engine) body(t engine.Target, req *canonical.Request, streaming bool) ([]byte, error) {
	req = withThink(req, t.Model)
	return wire.EncodeUpstreamRequest(req, wire.UpstreamOptions{
		Model:     t.Model,
		NumCtx:    t.ContextLength,
		MaxTokens: t.MaxTokens(req.Sampling.MaxTokens),
		Stream:    streaming,
	})
}

// chatOnce runs one non-streamed /api/chat call.
func (e *Engine) chatOnce(ctx context.Context, t engine.Target, req *canonical.Request) (*canonical.Response, error) {
	body, err := e.body(t, req, false)
	if err != nil {
		return nil, err
	}
	resp, err := engine.Post(ctx, e.cfg.Client, chatURL(t.URL), body, errorMessage)
	if err != nil {
		return nil, err
	}
	b, err := engine.ReadBody(ctx, resp)
	if err != nil {
		return nil, err
	}
	out, err := wire.DecodeUpstreamResponse(b, toolCallPrefix())
	if err != nil {
		return nil, &engine.Error{Retryable: true, Message: "malformed answer", Err: err}
	}
	return out, nil
}

// streamOnce runs one streamed /api/chat call.
func (e *Engine) streamOnce(ctx context.Context, t engine.Target, req *canonical.Request, emit func(canonical.Chunk) error) error {
	body, err := e.body(t, req, true)
	if err != nil {
		return err
	}
	ctx, idle := engine.WatchIdle(ctx, e.cfg.IdleTimeout)
	defer idle.Stop()
	resp, err := engine.Post(ctx, e.cfg.Client, chatURL(t.URL), body, errorMessage)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	r := stream.NewNDJSONReader(resp.Body, e.cfg.MaxLineBytes)
	dec := wire.StreamDecoder{IDPrefix: toolCallPrefix()}
	for {
		line, err := r.Next()
		if errors.Is(err, io.EOF) {
			return &engine.Error{Retryable: true, Message: "the stream ended before done"}
		}
		if err != nil {
			return engine.CallError(ctx, "read stream", err)
		}
		if ctx.Err() != nil {
			// The caller left; what the backend already sent is not wanted.
			return engine.CallError(ctx, "read stream", ctx.Err())
		}
		idle.Touch()
		c, done, err := dec.Decode(line)
		if err != nil {
			var se *wire.StreamError
			if errors.As(err, &se) {
				return &engine.Error{Retryable: true, Message: se.Message}
			}
			return &engine.Error{Retryable: true, Message: "malformed stream", Err: err}
		}
		if !c.Empty() {
			if err := emit(c); err != nil {
				return fmt.Errorf("emit: %w", err)
			}
		}
		if done {
			return nil
		}
	}
}

func chatURL(base string) string { return strings.TrimSuffix(base, "/") + "/api/chat" }

// errorMessage reads Ollama's {"error": "…"} body.
func errorMessage(b []byte) string {
	var e wire.ErrorResponse
	if err := json.Unmarshal(b, &e); err == nil && e.Error != "" {
		return e.Error
	}
	s := strings.TrimSpace(string(b))
	if len(s) > 512 {
		s = s[:512]
	}
	return s
}

// toolCallPrefix returns a fresh id prefix for tool calls Ollama gave no id, so
// that ids stay unique across the turns of a conversation.
func toolCallPrefix() string {
	return "call_" + strconv.FormatUint(rand.Uint64(), 36)
}
