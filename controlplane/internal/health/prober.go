package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

const (
	// DefaultTimeout bounds the health and listing calls of one probe.
	DefaultTimeout = 5 * time.Second
	// DefaultShowTimeout bounds the /api/show calls of one Ollama probe
	// together; describing many models for the first time takes longer
	// than a health check.
	DefaultShowTimeout = 15 * time.Second
	// DefaultContextLength is the context window assumed for a model whose
	// engine does not report one.
	DefaultContextLength = 4096
	// showConcurrency bounds the /api/show calls in flight per probe.
	showConcurrency = 4
	// maxBody bounds every response body a probe reads.
	maxBody = 16 << 20
	// maxCachedURLs bounds the /api/show cache; a fleet has far fewer backends.
	maxCachedURLs = 1024
)

// The engines a Prober understands.
const (
	EngineOllama = "ollama"
	EngineVLLM   = "vllm"
	EngineTTS    = "tts"
	EngineSTT    = "stt"
)

// Result is what one probe found.
type Result struct {
	// Healthy is true when the backend answered its health and model listing
	// endpoints.
	Healthy bool
	// Version is the engine's version, when it reports one.
	Version string
	// Simulated is true when the version marks the project's engine simulator.
	Simulated bool
	// Models are the models discovered; meaningful only when Healthy.
	Models []store.ModelSpec
	// Err is a short, non-secret description of the failure when not Healthy.
	Err string
}

// Prober probes backends over HTTP. It is safe for concurrent use.
type Prober struct {
	client      *http.Client
	log         *slog.Logger
	timeout     time.Duration
	showTimeout time.Duration

	mu    sync.Mutex
	shows map[string]map[showKey]store.ModelSpec // base URL -> described models
}

// showKey identifies one /api/show answer: a model changes digest when it is
// re-pulled, so an unchanged digest means an unchanged description.
type showKey struct{ name, digest string }

// NewProber returns a Prober that uses client (a default client when nil) and
// logs to log (discarded when nil).
func NewProber(client *http.Client, log *slog.Logger) *Prober {
	if client == nil {
		client = &http.Client{Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: DefaultTimeout}).DialContext,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: DefaultShowTimeout,
		}}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Prober{
		client:      client,
		log:         log,
		timeout:     DefaultTimeout,
		showTimeout: DefaultShowTimeout,
		shows:       map[string]map[showKey]store.ModelSpec{},
	}
}

// SetTimeouts changes the bound on the health calls and on the /api/show calls
// of each probe; zero keeps a value. Call it before the Prober is used.
func (p *Prober) SetTimeouts(probe, show time.Duration) {
	if probe > 0 {
		p.timeout = probe
	}
	if show > 0 {
		p.showTimeout = show
	}
}

// Probe checks the backend of the given engine ("ollama" or "vllm") at
// baseURL. A backend that is down is reported in the Result (Healthy false,
// Err set); the error is for a probe that cannot be made at all (an unknown
// engine or a malformed URL).
func (p *Prober) Probe(ctx context.Context, engine, baseURL string) (Result, error) {
	base, err := parseBase(baseURL)
	if err != nil {
		return Result{}, err
	}
	switch engine {
	case EngineOllama:
		return p.probeOllama(ctx, base), nil
	case EngineVLLM:
		return p.probeVLLM(ctx, base), nil
	case EngineTTS, EngineSTT:
		return p.probeAudio(ctx, base, engine), nil
	default:
		return Result{}, fmt.Errorf("probe: unknown engine %q", engine)
	}
}

// Forget drops what the Prober cached about the backend at baseURL.
func (p *Prober) Forget(baseURL string) {
	base, err := parseBase(baseURL)
	if err != nil {
		return
	}
	p.mu.Lock()
	delete(p.shows, base)
	p.mu.Unlock()
}

// parseBase checks that baseURL is an absolute http(s) URL and returns it
// without a trailing slash.
func parseBase(baseURL string) (string, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errors.New("probe: backend URL must be an absolute http(s) URL")
	}
	return strings.TrimRight(baseURL, "/"), nil
}

// fetch performs one call and returns the status and body (bounded). Its
// errors name the method and path, never the URL.
func (p *Prober) fetch(ctx context.Context, method, base, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, fmt.Errorf("%s %s: encode request: %w", method, path, err)
		}
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: build request: %w", method, path, stripURL(err))
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, stripURL(err))
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("%s %s: read body: %w", method, path, stripURL(err))
	}
	if len(b) > maxBody {
		return resp.StatusCode, nil, fmt.Errorf("%s %s: body larger than %d bytes", method, path, maxBody)
	}
	return resp.StatusCode, b, nil
}

// fetchJSON performs one call that must answer 200 and returns the body.
func (p *Prober) fetchJSON(ctx context.Context, method, base, path string, body any) ([]byte, error) {
	code, b, err := p.fetch(ctx, method, base, path, body)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("%s %s: status %d", method, path, code)
	}
	return b, nil
}

// stripURL removes the request URL from a transport error: it may carry
// credentials in its user info.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return errors.New("timeout")
		}
		return ue.Err
	}
	return err
}

// isSimulated reports whether an engine version marks the project's simulator
// (its versions end in "-sim").
func isSimulated(version string) bool {
	return strings.Contains(strings.ToLower(version), "sim")
}

// parseVersion reads {"version": "..."} answers (Ollama /api/version, vLLM /version).
func parseVersion(b []byte) (string, error) {
	var v struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return "", fmt.Errorf("decode version: %w", err)
	}
	return v.Version, nil
}
