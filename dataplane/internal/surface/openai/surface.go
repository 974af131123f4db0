package openai

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
	"github.com/mindrouter/mindrouter/dataplane/internal/surface"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/openai"
)

// Relay runs requests (relay.Relay).
type Relay interface {
	Chat(ctx context.Context, call relay.Call) (*relay.Result, error)
	ChatStream(ctx context.Context, call relay.Call, sink relay.Sink) (*relay.Result, error)
	Embed(ctx context.Context, call relay.Call, req *canonical.EmbeddingRequest) (*relay.Result, error)
	Rerank(ctx context.Context, call relay.Call, req *canonical.RerankRequest) (*relay.Result, error)
	Score(ctx context.Context, call relay.Call, req *canonical.ScoreRequest) (*relay.Result, error)
}

// Catalog lists the models a credential may use (cpclient.Client).
type Catalog interface {
	ListModels(ctx context.Context, credential string) ([]relay.ModelInfo, error)
}

// Header names this surface writes.
const (
	// QueuePositionHeader is set when the request waited in the model's queue.
	QueuePositionHeader = surface.QueuePositionHeader
	// SimulatedHeader is "true" when the answer came from the engine simulator.
	SimulatedHeader = surface.SimulatedHeader
)

// Config tunes the surface.
type Config struct {
	// WriteTimeout bounds each write of a stream to a client that stopped
	// reading; default 60s.
	WriteTimeout time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Responses keeps the Responses API's stored responses; nil leaves the
	// /v1/responses routes out.
	Responses ResponseStore
}

// Surface serves the OpenAI dialect.
type Surface struct {
	relay   Relay
	catalog Catalog
	cfg     Config
	log     *slog.Logger
}

// New returns the surface.
func New(r Relay, c Catalog, cfg Config, log *slog.Logger) *Surface {
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 60 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Surface{relay: r, catalog: c, cfg: cfg, log: log}
}

// Register adds the surface's routes to mux.
func (s *Surface) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/chat/completions", s.chatCompletions)
	mux.HandleFunc("POST /v1/completions", s.completions)
	mux.HandleFunc("POST /v1/embeddings", s.embeddings)
	mux.HandleFunc("POST /v1/rerank", s.rerank)
	mux.HandleFunc("POST /v1/score", s.score)
	mux.HandleFunc("GET /v1/models", s.models)
	s.registerAudio(mux)
	s.registerResponses(mux)
}

// Owns reports whether errors on path are written in this dialect.
func (s *Surface) Owns(path string) bool { return strings.HasPrefix(path, "/v1/") }

// Credential returns the API key from "Authorization: Bearer …" or "X-API-Key".
func Credential(r *http.Request) string {
	if key, ok := surface.Bearer(r); ok {
		return key
	}
	return strings.TrimSpace(r.Header.Get("X-Api-Key")) // canonical spelling: Get does not copy it
}

// read authenticates the request's shape (a key is present) and reads its
// body; on failure it has answered.
func (s *Surface) read(w http.ResponseWriter, r *http.Request) (credential string, body []byte, ok bool) {
	credential, body, err := surface.Read(r, Credential, errMissingKey)
	if err != nil {
		s.WriteError(w, r, err)
		return "", nil, false
	}
	if ce := canonical.CheckJSONBody(r, body); ce != nil {
		s.WriteError(w, r, ce)
		return "", nil, false
	}
	return credential, body, true
}

func (s *Surface) chatCompletions(w http.ResponseWriter, r *http.Request) {
	credential, body, ok := s.read(w, r)
	if !ok {
		return
	}
	req, err := openai.DecodeChatRequest(body)
	if err != nil {
		s.WriteError(w, r, err)
		return
	}
	call := surface.Call(r, credential, "/v1/chat/completions")
	call.Request = req
	id := call.RequestID
	meta := openai.Meta{ID: "chatcmpl-" + id, Model: req.Model, Created: s.cfg.Now().Unix()}
	if req.Stream {
		enc := openai.NewChunkEncoder(meta, call.Request.IncludeUsage)
		s.stream(w, r, enc, func(sink relay.Sink) error {
			_, err := s.relay.ChatStream(r.Context(), call, sink)
			return err
		}, nil)
		return
	}
	res, err := s.relay.Chat(r.Context(), call)
	if err != nil {
		s.WriteError(w, r, err)
		return
	}
	b, err := openai.EncodeResponse(res.Response, meta)
	if err != nil {
		s.WriteError(w, r, err)
		return
	}
	writeJSON(w, res.Admission, b)
}

// writeJSON writes a successful JSON answer with the admission headers.
func writeJSON(w http.ResponseWriter, a relay.Admission, b []byte) {
	h := w.Header()
	surface.AdmissionHeaders(h, a)
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

func (s *Surface) models(w http.ResponseWriter, r *http.Request) {
	credential := Credential(r)
	if credential == "" {
		s.WriteError(w, r, errMissingKey)
		return
	}
	catalog, err := s.catalog.ListModels(r.Context(), credential)
	if err != nil {
		s.WriteError(w, r, err)
		return
	}
	models := make([]openai.Model, 0, len(catalog))
	for i := range catalog {
		models = append(models, model(&catalog[i]))
	}
	slices.SortFunc(models, func(a, b openai.Model) int { return strings.Compare(a.ID, b.ID) })
	b, err := openai.EncodeModelList(models)
	if err != nil {
		s.WriteError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

func model(m *relay.ModelInfo) openai.Model {
	out := openai.Model{
		ID: m.Name, Created: m.Created, ContextLength: m.ContextLength,
		ModelMaxContext: m.ContextLength, Family: m.Family, ParameterSize: m.ParameterSize,
		Quantization: m.Quantization, Simulated: m.Simulated,
		DisplayName: m.DisplayName, Description: m.Description, IsAlias: m.IsAlias, AliasTargets: m.AliasTargets,
	}
	if len(m.AliasTargets) > 0 {
		out.AliasTarget = m.AliasTargets[0]
	}
	for _, c := range m.Capabilities {
		switch c {
		case relay.CapabilityVision:
			out.Capabilities.Multimodal = true
		case relay.CapabilityEmbedding:
			out.Capabilities.Embeddings = true
		case relay.CapabilityStructuredOutput:
			out.Capabilities.StructuredOutput = true
		case relay.CapabilityThinking:
			out.Capabilities.Thinking = true
		case relay.CapabilityTools:
			out.Capabilities.Tools = true
		}
	}
	return out
}
