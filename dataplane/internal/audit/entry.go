package audit

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	auditv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/audit/v1"
)

// Attempt is one backend a request was dispatched to.
type Attempt struct {
	BackendID int64
	UserID    int64
	Username  string
	APIKeyID  int64
	Group     string
	Queued    time.Duration
	TTFT      time.Duration
	Usage     canonical.Usage
	Succeeded bool
}

// Entry is one request's record under construction. Its methods are safe for
// concurrent use and do nothing on a nil Entry, so callers need not check.
type Entry struct {
	mu       sync.Mutex
	started  bool
	gate     func() error
	rec      auditv1.Record
	request  *canonical.Request
	acc      canonical.Accumulator
	streamed bool
	response *canonical.Response
	attempts []Attempt
	failure  error
	begin    time.Time
}

// NewEntry starts the record of a request received at begin. gate, when set,
// is asked before the request is admitted (Admit).
func NewEntry(begin time.Time, clientIP, userAgent string, gate func() error) *Entry {
	e := &Entry{begin: begin, gate: gate}
	e.rec.CreatedAt = timestamppb.New(begin)
	e.rec.ClientIp = clientIP
	e.rec.UserAgent = clip(userAgent, 512)
	return e
}

// Start marks the entry as an inference request to record: its id, the
// client-facing endpoint and the surface (dialect) it came in by.
func (e *Entry) Start(requestID, endpoint, surface string) {
	if e == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.started = true
	e.rec.RequestId, e.rec.Endpoint, e.rec.Surface = requestID, endpoint, surface
}

// Started reports whether Start was called.
func (e *Entry) Started() bool {
	if e == nil {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.started
}

// Admit returns the gate's refusal (the spool is full and the policy fails
// closed), nil otherwise.
func (e *Entry) Admit() error {
	if e == nil || e.gate == nil {
		return nil
	}
	return e.gate()
}

// Request records the canonical request (model, messages, parameters).
func (e *Entry) Request(model string, stream bool, req *canonical.Request) {
	if e == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rec.Model, e.rec.Streaming, e.request = model, stream, req
}

// Attempted records one attempt after its lease was released.
func (e *Entry) Attempted(a Attempt) {
	if e == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.attempts = append(e.attempts, a)
}

// Chunk records a streamed chunk that reached the client.
func (e *Entry) Chunk(c canonical.Chunk) {
	if e == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.streamed = true
	e.acc.Add(c)
}

// Response records a whole (non-streamed) answer; valid says whether it met
// the requested structured output (nil: none requested).
func (e *Entry) Response(r *canonical.Response, valid *bool) {
	if e == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.response = r
	if valid != nil {
		v := *valid
		e.rec.StructuredOutputValid = &v
	}
}

// Failed records the error the request ended with.
func (e *Entry) Failed(err error) {
	if e == nil || err == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.failure = err
}

// Finish completes the record with the status the client got and the time
// taken, and returns it with the artifacts it refers to (content excluded
// when withContent is false).
func (e *Entry) Finish(status int, end time.Time, withContent bool) (*auditv1.Record, []*auditv1.Artifact) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := &e.rec
	r.StatusCode = int32(status)
	r.TotalMs = end.Sub(e.begin).Milliseconds()
	var usage canonical.Usage
	for _, a := range e.attempts {
		r.BackendIds = append(r.BackendIds, a.BackendID)
		r.UserId, r.Username, r.ApiKeyId, r.Group = a.UserID, a.Username, a.APIKeyID, a.Group
		r.QueueWaitMs += a.Queued.Milliseconds()
		if a.Usage.Prompt > 0 || a.Usage.Completion > 0 {
			usage = a.Usage
		}
		r.TtftMs = a.TTFT.Milliseconds()
	}
	r.PromptTokens, r.CompletionTokens, r.TokensEstimated = usage.Prompt, usage.Completion, usage.Estimated
	switch {
	case e.failure != nil && isCancelled(e.failure):
		r.Status = "cancelled"
	case e.failure != nil || status >= 400:
		r.Status = "failed"
	default:
		r.Status = "completed"
	}
	if e.failure != nil {
		r.Error = clip(canonical.AsError(e.failure).Message, 2000)
	}
	resp := e.response
	if resp == nil && e.streamed {
		resp = e.acc.Response()
	}
	if resp != nil && len(resp.Choices) > 0 {
		r.FinishReason = string(resp.Choices[0].FinishReason)
	}
	if !withContent {
		r.ContentOmitted = true
		r.RequestJson, r.PromptText, r.ResponseText = "", "", "" // an Exchange's
		return r, nil
	}
	var arts []*auditv1.Artifact
	if e.request != nil {
		var reqJSON string
		reqJSON, r.PromptText, arts = requestContent(e.request)
		r.RequestJson = reqJSON
		for _, a := range arts {
			r.ArtifactHashes = append(r.ArtifactHashes, a.GetSha256())
		}
	}
	if resp != nil {
		r.ResponseText, r.Reasoning, r.ToolCallsJson = responseContent(resp)
	}
	return r, arts
}

func isCancelled(err error) bool {
	var ce *canonical.Error
	return errors.As(err, &ce) && ce.Kind == canonical.KindCancelled
}

// requestContent renders the request as JSON with every inline image replaced
// by "sha256:<hex>" naming its artifact, the text of its messages, and the
// artifacts.
func requestContent(req *canonical.Request) (string, string, []*auditv1.Artifact) {
	cp := *req
	cp.Messages = make([]canonical.Message, len(req.Messages))
	var text strings.Builder
	seen := map[string]bool{}
	var arts []*auditv1.Artifact
	for i, m := range req.Messages {
		cp.Messages[i] = m
		cp.Messages[i].Content = make([]canonical.Part, len(m.Content))
		for j, p := range m.Content {
			if p.Type == canonical.PartText {
				if text.Len() > 0 {
					text.WriteByte('\n')
				}
				text.WriteString(p.Text)
			}
			if p.Image != nil && p.Image.Data != "" {
				img := *p.Image
				data, err := base64.StdEncoding.DecodeString(img.Data)
				if err != nil {
					data = []byte(img.Data)
				}
				sum := sha256.Sum256(data)
				h := hex.EncodeToString(sum[:])
				if !seen[h] {
					seen[h] = true
					arts = append(arts, &auditv1.Artifact{Sha256: h, ContentType: img.MediaType, SizeBytes: int64(len(data)), Data: data})
				}
				img.Data = "sha256:" + h
				p.Image = &img
			}
			cp.Messages[i].Content[j] = p
		}
	}
	b, err := json.Marshal(&cp)
	if err != nil {
		b = []byte(`{}`)
	}
	return string(b), text.String(), arts
}

func responseContent(r *canonical.Response) (content, reasoning, toolCalls string) {
	var calls []canonical.ToolCall
	var c, rs strings.Builder
	for _, ch := range r.Choices {
		for _, p := range ch.Message.Content {
			c.WriteString(p.Text)
		}
		rs.WriteString(ch.Message.Reasoning)
		calls = append(calls, ch.Message.ToolCalls...)
	}
	if len(calls) > 0 {
		if b, err := json.Marshal(calls); err == nil {
			toolCalls = string(b)
		}
	}
	return c.String(), rs.String(), toolCalls
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// SurfaceOf names the dialect of a client-facing endpoint.
func SurfaceOf(endpoint string) string {
	switch {
	case endpoint == "/mcp" || strings.HasPrefix(endpoint, "/mcp/"):
		return "mcp"
	case endpoint == "/v1/search":
		return "search"
	case strings.HasPrefix(endpoint, "/api/"):
		return "ollama"
	case strings.HasPrefix(endpoint, "/v1/messages"), strings.HasPrefix(endpoint, "/anthropic/"):
		return "anthropic"
	case strings.HasPrefix(endpoint, "/v1/responses"):
		return "openai-responses"
	}
	return "openai"
}
