package enginesim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Engine names the inference engine a Server simulates.
type Engine string

// The engines a Server can simulate.
const (
	// EngineOllama simulates Ollama's native API (Ollama 0.17.4).
	EngineOllama Engine = "ollama"
	// EngineVLLM simulates vLLM's OpenAI-compatible server.
	EngineVLLM Engine = "vllm"
	// EngineTTS simulates an OpenAI-compatible text-to-speech server
	// (Speaches, Kokoro-FastAPI): POST /v1/audio/speech.
	EngineTTS Engine = "tts"
	// EngineSTT simulates an OpenAI-compatible speech-to-text server
	// (Speaches, vLLM's transcription server): POST /v1/audio/transcriptions.
	EngineSTT Engine = "stt"
)

// DropConnection is the Reply.ErrorMessage that, with a zero Reply.Status,
// makes the engine close the connection abruptly: a stream is cut after its
// first token chunk, a non-streaming request gets no response at all.
const DropConnection = "drop"

// MaxRequestBody is the largest request body the simulator reads; larger
// bodies are refused with 413 in the engine's error shape.
const MaxRequestBody = 32 << 20

// Config configures a Server. The zero value simulates an idle Ollama with
// one model, "sim-llama".
type Config struct {
	// Engine is the engine to simulate; default EngineOllama.
	Engine Engine
	// Models are the models the engine serves; default one model,
	// "sim-llama", with an 8192-token context.
	Models []ModelSpec
	// TTFT is the delay before the first token of a generation.
	TTFT time.Duration
	// InterTokenDelay is the delay between two tokens of a generation.
	InterTokenDelay time.Duration
	// CompletionTokens is the number of tokens generated for unscripted
	// requests that end on their own (finish reason "stop"); default 16.
	CompletionTokens int
	// Script, when set, is asked for the reply to each generation request
	// (once per request; with n > 1 every choice gets the same reply); a
	// nil result (or a nil Script) selects the default text. It is called
	// from request goroutines, so it must be safe for concurrent use.
	Script func(req Request) *Reply
	// Logger receives one debug record per request; default discards.
	Logger *slog.Logger
	// MaxRunning bounds the generations that run at once; the others wait
	// and are reported by vLLM's vllm:num_requests_waiting. 0 means no bound.
	MaxRunning int
	// LegacyReasoningField makes the vLLM engine put reasoning text in
	// "reasoning_content" (vLLM before the rename to "reasoning", see
	// vllm-project/vllm#27752) instead of "reasoning".
	LegacyReasoningField bool
}

// ModelSpec describes one simulated model.
type ModelSpec struct {
	// Name is the model name. Ollama reports names without a tag with
	// ":latest" appended and accepts both forms; vLLM matches it exactly.
	Name string
	// ContextLength is the context window in tokens; default 8192.
	ContextLength int
	// Family is the model family reported by Ollama; default "llama".
	Family string
	// Capabilities lists what the model can do: "completion", "tools",
	// "vision", "thinking", "embedding"; default completion and tools.
	Capabilities []string
	// Loaded makes the model loaded from the start (Ollama's /api/ps);
	// otherwise it becomes loaded when it first serves a request.
	Loaded bool
	// EmbeddingDim is the length of the embedding vectors; default 8.
	EmbeddingDim int
}

// Request is the engine-neutral view of a generation request that
// Config.Script receives.
type Request struct {
	// Engine is the engine that received the request.
	Engine Engine
	// Path is the request path, such as "/api/chat".
	Path string
	// Model is the model name as the client sent it.
	Model string
	// Messages are the chat messages; a prompt (generate, completions)
	// appears as one user message, preceded by a system message if any.
	Messages []Message
	// Stream reports whether the client asked for a stream.
	Stream bool
	// MaxTokens is the client's token limit (num_predict, max_tokens or
	// max_completion_tokens); 0 when absent.
	MaxTokens int
	// Tools is the raw "tools" field, if any.
	Tools json.RawMessage
	// Format is the raw "format" (Ollama) or "response_format" (vLLM)
	// field, if any.
	Format json.RawMessage
	// Raw is the whole request body.
	Raw json.RawMessage
	// Options are Ollama's "options"; for vLLM, the top-level fields.
	Options map[string]any
}

// Message is one chat message of a Request.
type Message struct {
	Role    string
	Content string
	// Images are base64 images (Ollama) or image URLs (vLLM).
	Images []string
	// ToolCalls is the raw "tool_calls" field of an assistant message.
	ToolCalls json.RawMessage
	// Thinking is the reasoning text of an assistant message.
	Thinking string
}

// Reply is a scripted answer to a Request.
type Reply struct {
	// Content is the answer text; it is streamed word by word.
	Content string
	// Thinking is reasoning text, streamed before the content: Ollama's
	// message.thinking (dropped when the request sets "think": false), vLLM's
	// reasoning field (dropped with "include_reasoning": false). Text
	// completions drop it.
	Thinking string
	// ToolCalls are tool calls made after the content. Ollama sends each
	// whole, in one chunk; vLLM streams the name, then the arguments in
	// fragments. /api/generate and text completions drop them.
	ToolCalls []ToolCall
	// FinishReason overrides the finish reason ("stop", "length",
	// "tool_calls") unless the token limit cut the reply short.
	FinishReason string
	// Status, when 400 or more, makes the engine answer with that status
	// and ErrorMessage in its own error shape instead of generating.
	Status int
	// ErrorMessage is the error text for Status, or DropConnection.
	ErrorMessage string
}

// ToolCall is one scripted tool call.
type ToolCall struct {
	// ID is the call id; empty selects one in the engine's format.
	ID string
	// Name is the function name.
	Name string
	// Arguments is the JSON object of arguments, as text.
	Arguments string
}

// Stats is a snapshot of what a Server has served, for tests.
type Stats struct {
	// Requests counts requests by path.
	Requests map[string]int
	// ActiveStreams is the number of streaming responses in progress.
	ActiveStreams int
	// Running is the number of generations in progress.
	Running int
	// Waiting is the number of generations waiting for a slot.
	Waiting int
	// Cancelled counts generations stopped because the client went away.
	Cancelled int
	// Dropped counts connections closed on purpose (DropConnection).
	Dropped int
	// LastPath is the path of the latest request.
	LastPath string
	// LastRequestBody is the body of the latest request that had one.
	LastRequestBody []byte
	// PromptTokens and CompletionTokens total the tokens of finished
	// generations.
	PromptTokens, CompletionTokens int64
}

// Server is a simulated engine. Create it with New or Listen.
type Server struct {
	cfg     Config
	log     *slog.Logger
	handler http.Handler
	start   time.Time
	slots   chan struct{} // nil when MaxRunning is 0
	seq     atomic.Uint64
	done    chan struct{}

	mu      sync.Mutex
	models  []*simModel
	stats   Stats
	metrics engineMetrics
}

type simModel struct {
	spec    ModelSpec
	loaded  bool
	expires time.Time // zero: does not expire
}

// New returns a Server for cfg, with defaults filled in.
func New(cfg Config) *Server {
	if cfg.Engine == "" {
		cfg.Engine = EngineOllama
	}
	if len(cfg.Models) == 0 {
		cfg.Models = []ModelSpec{{Name: defaultModel(cfg.Engine), ContextLength: 8192}}
	}
	if cfg.CompletionTokens <= 0 {
		cfg.CompletionTokens = 16
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, start: time.Now(), done: make(chan struct{})}
	s.stats.Requests = map[string]int{}
	if cfg.MaxRunning > 0 {
		s.slots = make(chan struct{}, cfg.MaxRunning)
	}
	for _, spec := range cfg.Models {
		if spec.ContextLength <= 0 {
			spec.ContextLength = 8192
		}
		if spec.Family == "" {
			spec.Family = "llama"
		}
		if len(spec.Capabilities) == 0 {
			spec.Capabilities = []string{"completion", "tools"}
		}
		if spec.EmbeddingDim <= 0 {
			spec.EmbeddingDim = 8
		}
		s.models = append(s.models, &simModel{spec: spec, loaded: spec.Loaded})
	}
	mux := http.NewServeMux()
	switch cfg.Engine {
	case EngineVLLM:
		s.routesVLLM(mux)
		s.handler = s.count(fastAPIFallback(mux))
	case EngineTTS, EngineSTT:
		s.routesAudio(mux)
		s.handler = s.count(fastAPIFallback(mux))
	default:
		s.routesOllama(mux)
		s.handler = s.count(mux)
	}
	return s
}

// defaultModel is the model an engine serves when none is configured.
func defaultModel(e Engine) string {
	switch e {
	case EngineTTS:
		return "sim-tts"
	case EngineSTT:
		return "sim-whisper"
	}
	return "sim-llama"
}

// Handler returns the engine's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Engine returns the simulated engine.
func (s *Server) Engine() Engine { return s.cfg.Engine }

// Stats returns a snapshot of what the server has served.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Requests = maps.Clone(s.stats.Requests)
	st.LastRequestBody = append([]byte(nil), s.stats.LastRequestBody...)
	return st
}

// Done is closed when a server started by Listen has shut down.
func (s *Server) Done() <-chan struct{} { return s.done }

// Listen serves a new Server for cfg on addr (such as "127.0.0.1:0") until
// ctx is done, then shuts it down gracefully: streams in progress are
// cancelled and Done is closed once the server has stopped. It returns the
// server and its base URL, such as "http://127.0.0.1:41234".
func Listen(ctx context.Context, addr string, cfg Config) (*Server, string, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("enginesim: listen %s: %w", addr, err)
	}
	s := New(cfg)
	reqCtx, cancelReqs := context.WithCancel(context.WithoutCancel(ctx))
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return reqCtx },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("enginesim: serve", "err", err)
		}
	}()
	go func() {
		defer close(s.done)
		<-ctx.Done()
		cancelReqs() // ends streams so that Shutdown does not wait for them
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := hs.Shutdown(sctx); err != nil {
			_ = hs.Close()
		}
		<-served
	}()
	return s, "http://" + ln.Addr().String(), nil
}

// ParseModels parses a comma-separated model list such as
// "llama3.2:3b=131072,nomic-embed-text": each entry is a name with an
// optional "=context length". Names containing "embed" get the embedding
// capability only.
func ParseModels(list string) ([]ModelSpec, error) {
	var specs []ModelSpec
	for item := range strings.SplitSeq(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		spec := ModelSpec{Name: item}
		if name, ctxLen, ok := strings.Cut(item, "="); ok {
			n, err := strconv.Atoi(ctxLen)
			if err != nil || n <= 0 {
				return nil, fmt.Errorf("enginesim: model %q: bad context length %q", name, ctxLen)
			}
			spec.Name, spec.ContextLength = name, n
		}
		if strings.Contains(strings.ToLower(spec.Name), "embed") {
			spec.Capabilities = []string{"embedding"}
			spec.Family = "bert"
			spec.EmbeddingDim = 768
		}
		specs = append(specs, spec)
	}
	return specs, nil
}

// count records each request in the stats.
func (s *Server) count(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.stats.Requests[r.URL.Path]++
		s.stats.LastPath = r.URL.Path
		s.mu.Unlock()
		s.log.Debug("enginesim request", "engine", s.cfg.Engine, "method", r.Method, "path", r.URL.Path)
		next.ServeHTTP(w, r)
	})
}

// readBody reads a request body of at most MaxRequestBody bytes and keeps a
// copy in the stats.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequestBody))
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.stats.LastRequestBody = body
	s.mu.Unlock()
	return body, nil
}

// isTooLarge reports whether err is the MaxBytesReader limit.
func isTooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}

// writeJSON writes v as a JSON response, as Gin's c.JSON and Starlette's
// JSONResponse do (no trailing newline).
func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"enginesim: encode response"}`)
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// nextID returns a fresh hexadecimal id of n digits, unique per server.
func (s *Server) nextID(n int) string {
	x := s.seq.Add(1)<<20 ^ uint64(s.start.UnixNano())
	var b strings.Builder
	for b.Len() < n {
		x += 0x9e3779b97f4a7c15 // splitmix64
		z := x
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		fmt.Fprintf(&b, "%016x", z^(z>>31))
	}
	return b.String()[:n]
}

// abort closes the client connection without a proper end of response.
func (s *Server) abort() {
	s.mu.Lock()
	s.stats.Dropped++
	s.mu.Unlock()
	panic(http.ErrAbortHandler)
}
