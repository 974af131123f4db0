package audio

import (
	"context"
	"net/http"
	"strings"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/engine"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/openai"
)

var (
	_ engine.Engine      = (*Engine)(nil)
	_ engine.Speaker     = (*Engine)(nil)
	_ engine.Transcriber = (*Engine)(nil)
)

// Config configures the engine.
type Config struct {
	// Client is the shared backend client (engine.NewClient).
	Client *http.Client
}

// Engine calls OpenAI-compatible TTS and STT backends.
type Engine struct {
	cfg Config
}

// New returns an audio engine.
func New(cfg Config) *Engine {
	if cfg.Client == nil {
		cfg.Client = http.DefaultClient
	}
	return &Engine{cfg: cfg}
}

// Chat refuses: a speech server does not chat (the control plane grants no
// chat lease on one).
func (e *Engine) Chat(context.Context, engine.Target, *canonical.Request) (*canonical.Response, error) {
	return nil, noChat()
}

// ChatStream refuses, as Chat.
func (e *Engine) ChatStream(context.Context, engine.Target, *canonical.Request, func(canonical.Chunk) error) error {
	return noChat()
}

func noChat() error {
	return &canonical.Error{Kind: canonical.KindInvalidRequest, Code: "capability_unsupported",
		Message: "this backend serves audio only; it cannot chat"}
}

// Speak runs POST /v1/audio/speech and returns the audio with the engine's
// Content-Type (the format's standard type when the engine sent none).
func (e *Engine) Speak(ctx context.Context, t engine.Target, req *canonical.SpeechRequest) (*canonical.SpeechResponse, error) {
	body, err := openai.EncodeUpstreamSpeech(req, t.Model)
	if err != nil {
		return nil, err
	}
	resp, err := engine.Post(ctx, e.cfg.Client, endpoint(t.URL, "/v1/audio/speech"), body, openai.ErrorMessage)
	if err != nil {
		return nil, err
	}
	ct := resp.Header.Get("Content-Type")
	b, err := engine.ReadBody(ctx, resp)
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, &engine.Error{Retryable: true, Message: "malformed answer: no audio"}
	}
	if ct == "" || strings.HasPrefix(ct, "application/json") {
		ct = openai.SpeechFormats[req.Format]
	}
	return &canonical.SpeechResponse{Audio: b, ContentType: ct}, nil
}

// Transcribe runs POST /v1/audio/transcriptions, asking for verbose_json.
func (e *Engine) Transcribe(ctx context.Context, t engine.Target, req *canonical.TranscriptionRequest) (*canonical.Transcription, error) {
	body, ct, err := openai.EncodeUpstreamTranscription(req, t.Model)
	if err != nil {
		return nil, err
	}
	return engine.PostDecode(ctx, e.cfg.Client, endpoint(t.URL, "/v1/audio/transcriptions"), ct, body,
		openai.ErrorMessage, openai.DecodeUpstreamTranscription)
}

func endpoint(base, path string) string { return strings.TrimSuffix(base, "/") + path }
