package enginesim

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

type vllmStreamOptions struct {
	IncludeUsage         *bool `json:"include_usage"`
	ContinuousUsageStats *bool `json:"continuous_usage_stats"`
}

// vllmGenReq holds the fields of chat and text completion requests.
type vllmGenReq struct {
	Model               string             `json:"model"`
	Messages            *[]vllmInMsg       `json:"messages"`
	Prompt              json.RawMessage    `json:"prompt"`
	MaxTokens           *int               `json:"max_tokens"`
	MaxCompletionTokens *int               `json:"max_completion_tokens"`
	N                   *int               `json:"n"`
	Stream              bool               `json:"stream"`
	StreamOptions       *vllmStreamOptions `json:"stream_options"`
	Tools               json.RawMessage    `json:"tools"`
	ResponseFormat      json.RawMessage    `json:"response_format"`
	IncludeReasoning    *bool              `json:"include_reasoning"`
}

type vllmInMsg struct {
	Role             string          `json:"role"`
	Content          json.RawMessage `json:"content"`
	ToolCalls        json.RawMessage `json:"tool_calls"`
	Reasoning        string          `json:"reasoning"`
	ReasoningContent string          `json:"reasoning_content"`
}

// vllmGen is one chat or text completion in progress.
type vllmGen struct {
	s          *Server
	chat       bool
	id         string
	created    int64
	model      string
	prompt     int
	plans      []plan // one per choice
	include    bool   // stream_options.include_usage
	continuous bool   // stream_options.continuous_usage_stats
	j          *job
	counts     []int // tokens emitted per choice
}

func (s *Server) vllmChat(w http.ResponseWriter, r *http.Request) { s.vllmGenerate(w, r, true) }

func (s *Server) vllmCompletions(w http.ResponseWriter, r *http.Request) {
	s.vllmGenerate(w, r, false)
}

func (s *Server) vllmGenerate(w http.ResponseWriter, r *http.Request, chat bool) {
	var req vllmGenReq
	body, ok := s.vllmDecode(w, r, &req)
	if !ok {
		return
	}
	var top map[string]any
	_ = json.Unmarshal(body, &top)
	var msgs []Message
	if chat {
		if req.Messages == nil {
			missingField(w, "messages")
			return
		}
		for _, m := range *req.Messages {
			text, images := messageContent(m.Content)
			msgs = append(msgs, Message{Role: m.Role, Content: text, Images: images, ToolCalls: m.ToolCalls,
				Thinking: m.Reasoning + m.ReasoningContent})
		}
	} else {
		prompts, ok := stringList(top["prompt"])
		if !ok { // token ids: count their text
			prompts = []string{string(req.Prompt)}
		}
		if len(prompts) == 0 {
			vllmError(w, http.StatusBadRequest, "Either prompt or prompt_embeds must be provided and non-empty.")
			return
		}
		for _, p := range prompts {
			msgs = append(msgs, Message{Role: "user", Content: p})
		}
	}
	m := s.vllmLookup(w, req.Model)
	if m == nil {
		return
	}
	if !m.has("completion") {
		api := "Completions"
		if chat {
			api = "Chat Completions"
		}
		vllmError(w, http.StatusBadRequest, "The model does not support "+api+" API")
		return
	}
	if req.StreamOptions != nil && !req.Stream {
		vllmError(w, http.StatusBadRequest, "Stream options can only be defined when `stream=True`.")
		return
	}
	n := 1
	if req.N != nil {
		n = *req.N
	}
	if n < 1 {
		vllmError(w, http.StatusBadRequest, "n must be at least 1.")
		return
	}
	maxTokens := 0
	switch {
	case req.MaxCompletionTokens != nil:
		maxTokens = *req.MaxCompletionTokens
	case req.MaxTokens != nil:
		maxTokens = *req.MaxTokens
	case !chat:
		maxTokens = 16 // CompletionRequest.max_tokens defaults to 16
	}
	prompt := PromptTokens(msgs)
	if !checkContext(w, m, prompt, maxTokens) {
		return
	}
	if maxTokens <= 0 {
		maxTokens = m.spec.ContextLength - prompt
	}

	g := &vllmGen{s: s, chat: chat, created: time.Now().Unix(), model: m.spec.Name, prompt: prompt}
	if chat {
		g.id = "chatcmpl-" + s.nextID(32)
	} else {
		g.id = "cmpl-" + s.nextID(32)
	}
	if req.StreamOptions != nil {
		g.include = req.StreamOptions.IncludeUsage != nil && *req.StreamOptions.IncludeUsage
		g.continuous = g.include && req.StreamOptions.ContinuousUsageStats != nil && *req.StreamOptions.ContinuousUsageStats
	}
	sreq := Request{Engine: EngineVLLM, Path: r.URL.Path, Model: req.Model, Messages: msgs, Stream: req.Stream,
		Tools: req.Tools, Format: req.ResponseFormat, Raw: body, Options: top}
	if req.MaxCompletionTokens != nil || req.MaxTokens != nil {
		sreq.MaxTokens = maxTokens
	}
	thinking := chat && (req.IncludeReasoning == nil || *req.IncludeReasoning)
	choices := n
	if !chat {
		choices = n * len(msgs) // one set of n choices per prompt
	}
	p := s.makePlan(sreq, maxTokens, thinking, func() string { return "chatcmpl-tool-" + s.nextID(32) })
	if p.status >= 400 {
		vllmError(w, p.status, p.errMsg)
		return
	}
	if !chat { // text completions carry text only
		p.tokens = filterTokens(filterTokens(p.tokens, tokTool), tokThinking)
		p.calls, p.complete = nil, nil
	}
	for range choices {
		g.plans = append(g.plans, p)
	}
	g.counts = make([]int, choices)
	g.j = s.admit(r.Context(), m, prompt, req.Stream)
	if g.j == nil {
		return
	}
	defer g.j.end("")
	if req.Stream {
		g.stream(w, r)
	} else {
		g.full(w, r)
	}
}

// messageContent flattens an OpenAI message content: a string, or parts
// of type "text" and "image_url".
func messageContent(raw json.RawMessage) (string, []string) {
	var text string
	if json.Unmarshal(raw, &text) == nil {
		return text, nil
	}
	var parts []struct {
		Type     string `json:"type"`
		Text     string `json:"text"`
		ImageURL struct {
			URL string `json:"url"`
		} `json:"image_url"`
	}
	_ = json.Unmarshal(raw, &parts)
	var texts, images []string
	for _, p := range parts {
		switch p.Type {
		case "text":
			texts = append(texts, p.Text)
		case "image_url":
			images = append(images, p.ImageURL.URL)
		}
	}
	return strings.Join(texts, "\n"), images
}

// reasoningKey is the message field that carries reasoning text.
func (g *vllmGen) reasoningKey() string {
	if g.s.cfg.LegacyReasoningField {
		return "reasoning_content"
	}
	return "reasoning"
}

// chunk wraps stream choices in a chunk object.
func (g *vllmGen) chunk(choices []obj, extra ...kv) obj {
	object := "chat.completion.chunk"
	if !g.chat {
		object = "text_completion"
	}
	c := obj{{"id", g.id}, {"object", object}, {"created", g.created}, {"model", g.model}, {"choices", choices}}
	return append(c, extra...)
}

// withUsage adds running usage to a chunk of choice i when
// continuous_usage_stats is on.
func (g *vllmGen) withUsage(c obj, i int) obj {
	if g.continuous {
		c = append(c, kv{"usage", streamUsage(g.prompt, g.counts[i])})
	}
	return c
}

// delta is the chat delta or completion text of one token.
func (g *vllmGen) delta(p *plan, t token) any {
	if !g.chat {
		return t.text
	}
	switch t.kind {
	case tokThinking:
		return obj{{g.reasoningKey(), t.text}}
	case tokTool:
		tc := obj{{"index", t.tool}, {"function", obj{{"arguments", t.text}}}}
		return obj{{"tool_calls", []obj{tc}}}
	}
	return obj{{"content", t.text}}
}

// choice is a stream choice: a chat delta or a completion text.
func (g *vllmGen) choice(i int, payload any, finish any, last bool) obj {
	if !g.chat {
		return obj{{"index", i}, {"text", payload}, {"logprobs", nil}, {"finish_reason", finish},
			{"stop_reason", nil}, {"prompt_token_ids", nil}, {"token_ids", nil}}
	}
	c := obj{{"index", i}, {"delta", payload}, {"logprobs", nil}, {"finish_reason", finish}}
	if last {
		c = append(c, kv{"stop_reason", nil})
	}
	return append(c, kv{"token_ids", nil})
}

func (g *vllmGen) stream(w http.ResponseWriter, r *http.Request) {
	rc := sseStart(w)
	steps := len(g.plans[0].tokens)
	for step := 0; step < max(steps, 1); step++ {
		if !g.s.pace(r.Context(), step) {
			return // deferred end("") counts the cancellation
		}
		if step == 0 && g.chat { // the role chunk goes out with the first output
			for i := range g.plans {
				role := obj{{"index", i}, {"delta", obj{{"role", "assistant"}, {"content", ""}}},
					{"logprobs", nil}, {"finish_reason", nil}}
				if !sse(w, rc, g.withUsage(g.chunk([]obj{role}, kv{"prompt_token_ids", nil}), i)) {
					return
				}
			}
		}
		if step >= steps {
			break
		}
		for i := range g.plans {
			p := &g.plans[i]
			t := p.tokens[step]
			if g.chat && t.kind == tokTool && (step == 0 || p.tokens[step-1].kind != tokTool || p.tokens[step-1].tool != t.tool) {
				// the tool parser announces the call before its arguments
				name := obj{{"tool_calls", []obj{{{"id", p.calls[t.tool].ID}, {"type", "function"},
					{"index", t.tool}, {"function", obj{{"name", p.calls[t.tool].Name}}}}}}}
				if !sse(w, rc, g.withUsage(g.chunk([]obj{{{"index", i}, {"delta", name}, {"logprobs", nil},
					{"finish_reason", nil}, {"token_ids", nil}}}), i)) {
					return
				}
			}
			g.j.token()
			g.counts[i]++
			last := step == steps-1 && p.finish == "length"
			var finish any
			if last {
				finish = "length"
			}
			payload := g.delta(p, t)
			if !sse(w, rc, g.withUsage(g.chunk([]obj{g.choice(i, payload, finish, last)}), i)) {
				return
			}
		}
		if g.plans[0].drop {
			g.j.end("abort")
			g.s.abort()
		}
	}
	if g.plans[0].drop {
		g.j.end("abort")
		g.s.abort()
	}
	for i := range g.plans {
		if p := &g.plans[i]; p.finish != "length" || len(p.tokens) == 0 {
			var payload any = ""
			if g.chat {
				payload = obj{{"content", ""}}
			}
			if !sse(w, rc, g.withUsage(g.chunk([]obj{g.choice(i, payload, p.finish, true)}), i)) {
				return
			}
		}
	}
	if g.include {
		total := 0
		for _, c := range g.counts {
			total += c
		}
		sse(w, rc, g.chunk([]obj{}, kv{"usage", streamUsage(g.prompt, total)}))
	}
	g.j.end(g.plans[0].finish)
	sseDone(w, rc)
}

func (g *vllmGen) full(w http.ResponseWriter, r *http.Request) {
	steps := len(g.plans[0].tokens)
	for step := range steps {
		if !g.s.pace(r.Context(), step) {
			return
		}
		if g.plans[0].drop {
			g.j.end("abort")
			g.s.abort()
		}
		for i := range g.plans {
			g.j.token()
			g.counts[i]++
		}
	}
	if g.plans[0].drop {
		g.j.end("abort")
		g.s.abort()
	}
	choices := make([]obj, 0, len(g.plans))
	total := 0
	for i := range g.plans {
		p := &g.plans[i]
		total += g.counts[i]
		if !g.chat {
			choices = append(choices, obj{{"index", i}, {"text", p.text(tokContent)}, {"logprobs", nil},
				{"finish_reason", p.finish}, {"stop_reason", nil}, {"token_ids", nil},
				{"prompt_logprobs", nil}, {"prompt_token_ids", nil}})
			continue
		}
		var content, reasoning any = p.text(tokContent), nil
		if th := p.text(tokThinking); th != "" {
			reasoning = th
		}
		msg := obj{{"role", "assistant"}, {"content", content}, {"refusal", nil}, {"annotations", nil},
			{"audio", nil}, {"function_call", nil}}
		if calls := p.completeCalls(); len(calls) > 0 {
			if content == "" {
				msg[1].v = nil // the tool parser found no text besides the calls
			}
			var tcs []obj
			for _, c := range calls {
				tcs = append(tcs, obj{{"id", c.ID}, {"type", "function"},
					{"function", obj{{"name", c.Name}, {"arguments", c.Arguments}}}})
			}
			msg = append(msg, kv{"tool_calls", tcs})
		}
		msg = append(msg, kv{g.reasoningKey(), reasoning})
		choices = append(choices, obj{{"index", i}, {"message", msg}, {"logprobs", nil},
			{"finish_reason", p.finish}, {"stop_reason", nil}, {"token_ids", nil}})
	}
	g.j.end(g.plans[0].finish)
	object := "chat.completion"
	if !g.chat {
		object = "text_completion"
	}
	resp := obj{{"id", g.id}, {"object", object}, {"created", g.created}, {"model", g.model},
		{"choices", choices}, {"service_tier", nil}, {"system_fingerprint", nil}, {"usage", usage(g.prompt, total)}}
	if g.chat {
		resp = append(resp, kv{"prompt_logprobs", nil}, kv{"prompt_token_ids", nil})
	}
	resp = append(resp, kv{"kv_transfer_params", nil})
	vllmJSON(w, http.StatusOK, resp)
}
