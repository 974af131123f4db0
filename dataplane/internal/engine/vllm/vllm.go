package vllm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/engine"
	"github.com/mindrouter/mindrouter/dataplane/internal/stream"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/openai"
)

// Config configures the engine.
type Config struct {
	// Client is the shared backend client (engine.NewClient).
	Client *http.Client
	// IdleTimeout ends a stream whose backend sends nothing for this long; 0 never.
	IdleTimeout time.Duration
	// MaxEventBytes bounds one server-sent event; 0 means stream.DefaultMaxFrame.
	MaxEventBytes int
}

// Engine calls vLLM (OpenAI-compatible) backends.
type Engine struct {
	cfg Config
}

// New returns a vLLM engine.
func New(cfg Config) *Engine {
	if cfg.Client == nil {
		cfg.Client = http.DefaultClient
	}
	return &Engine{cfg: cfg}
}

var _ engine.Engine = (*Engine)(nil)

var doneData = []byte("[DONE]")

func (e *Engine) body(t engine.Target, req *canonical.Request, streaming bool) ([]byte, error) {
	return openai.EncodeUpstreamRequest(req, openai.UpstreamOptions{
		Model:     t.Model,
		MaxTokens: t.MaxTokens(req.Sampling.MaxTokens),
		Stream:    streaming,
	})
}

// Chat runs a non-streamed chat completion.
func (e *Engine) Chat(ctx context.Context, t engine.Target, req *canonical.Request) (*canonical.Response, error) {
	body, err := e.body(t, req, false)
	if err != nil {
		return nil, err
	}
	return engine.PostDecode(ctx, e.cfg.Client, chatURL(t.URL), "application/json", body, openai.ErrorMessage, openai.DecodeUpstreamResponse)
}

// ChatStream runs a streamed chat completion. The usage chunk is held back and
// emitted last, once, even if the engine reports usage more than once.
func (e *Engine) ChatStream(ctx context.Context, t engine.Target, req *canonical.Request, emit func(canonical.Chunk) error) error {
	body, err := e.body(t, req, true)
	if err != nil {
		return err
	}
	ctx, idle := engine.WatchIdle(ctx, e.cfg.IdleTimeout)
	defer idle.Stop()
	resp, err := engine.Post(ctx, e.cfg.Client, chatURL(t.URL), body, openai.ErrorMessage)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	r := stream.NewSSEReader(resp.Body, e.cfg.MaxEventBytes)
	var dec openai.ChunkDecoder
	var usage *canonical.Usage
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			return &engine.Error{Retryable: true, Message: "the stream ended before [DONE]"}
		}
		if err != nil {
			return engine.CallError(ctx, "read stream", err)
		}
		if ctx.Err() != nil {
			// The caller left; what the backend already sent is not wanted.
			return engine.CallError(ctx, "read stream", ctx.Err())
		}
		idle.Touch()
		if bytes.Equal(bytes.TrimSpace(ev.Data), doneData) {
			break
		}
		chunks, err := dec.Decode(ev.Data)
		if err != nil {
			var se *openai.StreamError
			if errors.As(err, &se) {
				return &engine.Error{Retryable: true, Message: se.Message}
			}
			return &engine.Error{Retryable: true, Message: "malformed stream", Err: err}
		}
		for _, c := range chunks {
			if c.Usage != nil {
				u := *c.Usage
				usage = &u
				c.Usage = nil
			}
			if c.Empty() {
				continue
			}
			if err := emit(c); err != nil {
				return fmt.Errorf("emit: %w", err)
			}
		}
	}
	if usage != nil && (usage.Prompt > 0 || usage.Completion > 0) {
		if err := emit(canonical.Chunk{Usage: usage}); err != nil {
			return fmt.Errorf("emit: %w", err)
		}
	}
	return nil
}

func chatURL(base string) string { return strings.TrimSuffix(base, "/") + "/v1/chat/completions" }
