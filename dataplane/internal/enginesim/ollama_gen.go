package enginesim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

type ollamaInMsg struct {
	Role      string          `json:"role"`
	Content   string          `json:"content"`
	Thinking  string          `json:"thinking"`
	Images    []string        `json:"images"`
	ToolCalls json.RawMessage `json:"tool_calls"`
	ToolName  string          `json:"tool_name"`
}

// ollamaGenReq holds the fields of /api/chat and /api/generate requests.
type ollamaGenReq struct {
	Model     string          `json:"model"`
	Messages  []ollamaInMsg   `json:"messages"`
	Prompt    string          `json:"prompt"`
	System    string          `json:"system"`
	Template  string          `json:"template"`
	Context   []int           `json:"context"`
	Raw       bool            `json:"raw"`
	Images    []string        `json:"images"`
	Stream    *bool           `json:"stream"`
	Format    json.RawMessage `json:"format"`
	KeepAlive json.RawMessage `json:"keep_alive"`
	Tools     json.RawMessage `json:"tools"`
	Options   map[string]any  `json:"options"`
	Think     json.RawMessage `json:"think"`
}

type ollamaOutMsg struct {
	Role      string           `json:"role"`
	Content   string           `json:"content"`
	Thinking  string           `json:"thinking,omitempty"`
	ToolCalls []ollamaToolCall `json:"tool_calls,omitempty"`
}

type ollamaToolCall struct {
	ID       string `json:"id,omitempty"`
	Function struct {
		Index     int             `json:"index"`
		Name      string          `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
	} `json:"function"`
}

// ollamaMetrics are api.Metrics: all omitted when zero.
type ollamaMetrics struct {
	TotalDuration      int64 `json:"total_duration,omitempty"`
	LoadDuration       int64 `json:"load_duration,omitempty"`
	PromptEvalCount    int   `json:"prompt_eval_count,omitempty"`
	PromptEvalDuration int64 `json:"prompt_eval_duration,omitempty"`
	EvalCount          int   `json:"eval_count,omitempty"`
	EvalDuration       int64 `json:"eval_duration,omitempty"`
}

// ollamaChunk is api.ChatResponse (Message set) or api.GenerateResponse
// (Response set); generate selects which.
type ollamaChunk struct {
	Model      string        `json:"model"`
	CreatedAt  time.Time     `json:"created_at"`
	Message    *ollamaOutMsg `json:"message,omitempty"`
	Response   *string       `json:"response,omitempty"`
	Thinking   string        `json:"thinking,omitempty"`
	Done       bool          `json:"done"`
	DoneReason string        `json:"done_reason,omitempty"`
	Context    []int         `json:"context,omitempty"`
	ollamaMetrics
}

func (s *Server) ollamaChat(w http.ResponseWriter, r *http.Request) { s.ollamaGen(w, r, false) }

func (s *Server) ollamaGenerate(w http.ResponseWriter, r *http.Request) { s.ollamaGen(w, r, true) }

// ollamaGen serves /api/chat and /api/generate.
func (s *Server) ollamaGen(w http.ResponseWriter, r *http.Request, generate bool) {
	began := time.Now()
	var req ollamaGenReq
	body, ok := s.ollamaDecode(w, r, &req)
	if !ok {
		return
	}
	m := s.ollamaLookup(w, req.Model)
	if m == nil {
		return
	}
	keepAlive, err := parseKeepAlive(req.KeepAlive)
	if err != nil {
		ollamaError(w, http.StatusBadRequest, err.Error())
		return
	}
	if generate && req.Raw && (req.Template != "" || req.System != "" || len(req.Context) > 0) {
		ollamaError(w, http.StatusBadRequest, "raw mode does not support template, system, or context")
		return
	}
	think := strings.TrimSpace(string(req.Think))
	thinkOn := think != "" && think != "null" && think != "false"
	switch {
	case thinkOn && !m.has("thinking"):
		ollamaError(w, http.StatusBadRequest, fmt.Sprintf("%q does not support thinking", req.Model))
		return
	case !m.has("completion"):
		verb := "chat"
		if generate {
			verb = "generate"
		}
		ollamaError(w, http.StatusBadRequest, fmt.Sprintf("%q does not support %s", req.Model, verb))
		return
	case !generate && hasTools(req.Tools) && !m.has("tools"):
		ollamaError(w, http.StatusBadRequest, "registry.ollama.ai/library/"+ollamaName(m.spec.Name)+" does not support tools")
		return
	}

	msgs := ollamaMessages(req, generate)
	if len(msgs) == 0 || (generate && req.Prompt == "") { // load or unload the model
		reason := "load"
		if keepAlive == 0 {
			reason = "unload"
		}
		s.keepModel(m, keepAlive)
		out := ollamaChunk{Model: req.Model, CreatedAt: time.Now().UTC(), Done: true, DoneReason: reason}
		if generate {
			out.Response = new(string)
		} else {
			out.Message = &ollamaOutMsg{Role: "assistant"}
		}
		writeJSON(w, http.StatusOK, ctJSON, out)
		return
	}

	stream := req.Stream == nil || *req.Stream
	maxTokens := intOption(req.Options, "num_predict")
	sreq := Request{Engine: EngineOllama, Path: r.URL.Path, Model: req.Model, Messages: msgs, Stream: stream,
		MaxTokens: max(maxTokens, 0), Tools: req.Tools, Format: req.Format, Raw: body, Options: req.Options}
	p := s.makePlan(sreq, maxTokens, think != "false", func() string { return "call_" + s.nextID(8) })
	if generate { // generate has no tool calls
		p.tokens = filterTokens(p.tokens, tokTool)
		p.calls, p.complete = nil, nil
	}
	if p.status >= 400 {
		ollamaError(w, p.status, p.errMsg)
		return
	}

	prompt := PromptTokens(msgs)
	j := s.admit(r.Context(), m, prompt, stream)
	if j == nil {
		return
	}
	defer j.end("")
	defer s.keepModel(m, keepAlive)
	admitted := time.Now()
	newChunk := func() ollamaChunk {
		c := ollamaChunk{Model: req.Model, CreatedAt: time.Now().UTC()}
		if generate {
			c.Response = new(string)
		} else {
			c.Message = &ollamaOutMsg{Role: "assistant"}
		}
		return c
	}

	var rc *http.ResponseController
	if stream {
		w.Header().Set("Content-Type", ctNDJSON)
		w.WriteHeader(http.StatusOK)
		rc = http.NewResponseController(w)
	}
	final := newChunk()
	var firstToken time.Time
	for i, t := range p.tokens {
		if !s.pace(r.Context(), i) {
			return // j.end("") counts the cancellation
		}
		if i == 0 {
			firstToken = time.Now()
		}
		j.token()
		c := newChunk()
		switch t.kind {
		case tokContent:
			if generate {
				*c.Response = t.text
			} else {
				c.Message.Content = t.text
			}
		case tokThinking:
			if generate {
				c.Thinking = t.text
			} else {
				c.Message.Thinking = t.text
			}
		case tokTool:
			if !p.complete[t.tool] || (i+1 < len(p.tokens) && p.tokens[i+1].kind == tokTool && p.tokens[i+1].tool == t.tool) {
				continue // Ollama's tool parser emits a call once it is whole
			}
			c.Message.ToolCalls = []ollamaToolCall{ollamaCall(p.calls[t.tool], t.tool)}
		}
		if !stream {
			mergeChunk(&final, c)
		} else if err := json.NewEncoder(w).Encode(c); err != nil {
			return
		} else {
			_ = rc.Flush()
		}
		if p.drop {
			j.end("abort")
			s.abort()
		}
	}
	if p.drop {
		j.end("abort")
		s.abort()
	}
	final.CreatedAt = time.Now().UTC()
	final.Done = true
	final.DoneReason = "stop"
	if p.finish == "length" {
		final.DoneReason = "length"
	}
	final.ollamaMetrics = ollamaTimings(began, admitted, firstToken, prompt, j.generated, j.cold)
	if generate && !req.Raw {
		final.Context = tokenIDs(req.Prompt+p.text(tokContent), prompt+j.generated)
	}
	j.end(p.finish)
	if !stream {
		writeJSON(w, http.StatusOK, ctJSON, final)
		return
	}
	if !generate {
		final.Message.Content, final.Message.Thinking, final.Message.ToolCalls = "", "", nil
	} else {
		*final.Response, final.Thinking = "", ""
	}
	_ = json.NewEncoder(w).Encode(final)
	_ = rc.Flush()
}

// ollamaMessages returns the messages a request templates into its prompt.
func ollamaMessages(req ollamaGenReq, generate bool) []Message {
	var msgs []Message
	if generate {
		if req.System != "" {
			msgs = append(msgs, Message{Role: "system", Content: req.System})
		}
		if req.Prompt != "" {
			msgs = append(msgs, Message{Role: "user", Content: req.Prompt, Images: req.Images})
		}
		return msgs
	}
	for _, m := range req.Messages {
		msgs = append(msgs, Message{Role: strings.ToLower(m.Role), Content: m.Content, Images: m.Images,
			ToolCalls: m.ToolCalls, Thinking: m.Thinking})
	}
	return msgs
}

func ollamaCall(c ToolCall, index int) ollamaToolCall {
	var tc ollamaToolCall
	tc.ID = c.ID
	tc.Function.Index = index
	tc.Function.Name = c.Name
	tc.Function.Arguments = json.RawMessage(c.Arguments)
	if !json.Valid(tc.Function.Arguments) {
		tc.Function.Arguments = json.RawMessage("{}")
	}
	return tc
}

// mergeChunk accumulates a token chunk into the non-streaming answer, as
// Ollama's handlers do.
func mergeChunk(dst *ollamaChunk, c ollamaChunk) {
	if dst.Response != nil {
		*dst.Response += *c.Response
		dst.Thinking += c.Thinking
		return
	}
	dst.Message.Content += c.Message.Content
	dst.Message.Thinking += c.Message.Thinking
	dst.Message.ToolCalls = append(dst.Message.ToolCalls, c.Message.ToolCalls...)
}

// ollamaTimings fills the final metrics; durations are real but never zero
// where a count is set, so the same keys appear as with a real engine.
func ollamaTimings(began, admitted, firstToken time.Time, prompt, generated int, cold bool) ollamaMetrics {
	now := time.Now()
	load := admitted.Sub(began) + 50*time.Microsecond
	if cold {
		load += time.Millisecond
	}
	promptEval := time.Duration(prompt) * 20 * time.Microsecond
	eval := time.Duration(generated) * 100 * time.Microsecond
	if !firstToken.IsZero() {
		promptEval = max(promptEval, firstToken.Sub(admitted))
		eval = max(eval, now.Sub(firstToken))
	}
	total := max(now.Sub(began), load+promptEval+eval)
	return ollamaMetrics{TotalDuration: int64(total), LoadDuration: int64(load), PromptEvalCount: prompt,
		PromptEvalDuration: int64(promptEval), EvalCount: generated, EvalDuration: int64(eval)}
}

// intOption reads an integer option; 0 when absent or not a number.
func intOption(opts map[string]any, key string) int {
	if f, ok := opts[key].(float64); ok {
		return int(f)
	}
	return 0
}

func hasTools(raw json.RawMessage) bool {
	t := strings.TrimSpace(string(raw))
	return t != "" && t != "null" && t != "[]"
}

func filterTokens(ts []token, drop tokKind) []token {
	out := ts[:0:0]
	for _, t := range ts {
		if t.kind != drop {
			out = append(out, t)
		}
	}
	return out
}
