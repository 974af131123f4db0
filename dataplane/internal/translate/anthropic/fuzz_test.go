package anthropic_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/anthropic"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/anthropic/anthropictest"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/ollama"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/openai"
)

// FuzzDecodeMessagesRequest: any body is either refused with a client error
// or becomes a well-formed canonical request that both engine encoders take
// without panicking. Seeds: testdata/fuzz/FuzzDecodeMessagesRequest.
//
//	go test ./internal/translate/anthropic -run '^$' -fuzz FuzzDecodeMessagesRequest -fuzztime 60s
func FuzzDecodeMessagesRequest(f *testing.F) {
	f.Add([]byte(`{"model":"m","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, decode := range []func([]byte) (*canonical.Request, error){anthropic.DecodeMessagesRequest, anthropic.DecodeCountTokensRequest} {
			req, err := decode(body)
			if err != nil {
				var ce *canonical.Error
				if !errors.As(err, &ce) || ce.Kind != canonical.KindInvalidRequest || ce.Message == "" {
					t.Fatalf("refusal is not a client error: %#v", err)
				}
				continue
			}
			checkRequest(t, req)
			if _, err := openai.EncodeUpstreamRequest(req, openai.UpstreamOptions{Model: "m", Stream: true}); err != nil {
				t.Fatalf("vLLM encoding: %v", err)
			}
			_, _ = ollama.EncodeUpstreamRequest(req, ollama.UpstreamOptions{Model: "m"})
		}
	})
}

func checkRequest(t *testing.T, req *canonical.Request) {
	t.Helper()
	if strings.TrimSpace(req.Model) == "" || len(req.Messages) == 0 || req.Sampling.MaxTokens < 0 {
		t.Fatalf("accepted a request without model, messages or with negative max_tokens: %+v", req)
	}
	for i, m := range req.Messages {
		if !m.Role.Valid() {
			t.Fatalf("message %d has role %q", i, m.Role)
		}
		if m.Role == canonical.RoleSystem && i != 0 {
			t.Fatalf("system message at %d", i)
		}
		if len(m.ToolCalls) > 0 && m.Role != canonical.RoleAssistant {
			t.Fatalf("message %d (%s) has tool calls", i, m.Role)
		}
		if m.Role == canonical.RoleTool && m.ToolCallID == "" {
			t.Fatalf("tool message %d has no tool_use_id", i)
		}
		for _, p := range m.Content {
			if p.Type == canonical.PartImage && (p.Image == nil || (p.Image.Data == "" && p.Image.URL == "")) {
				t.Fatalf("message %d has an empty image", i)
			}
			if p.Type == canonical.PartImage && m.Role != canonical.RoleUser {
				t.Fatalf("message %d (%s) has an image", i, m.Role)
			}
		}
		for _, tc := range m.ToolCalls {
			if tc.ID == "" || tc.Name == "" || !strings.HasPrefix(tc.Arguments, "{") {
				t.Fatalf("bad tool call %+v", tc)
			}
		}
	}
	for _, tool := range req.Tools {
		if tool.Name == "" || len(tool.Parameters) == 0 || tool.Parameters[0] != '{' {
			t.Fatalf("bad tool %+v", tool)
		}
	}
}

// FuzzStreamEncoder drives the encoder with arbitrary chunk sequences (text,
// thinking, tool call fragments in any order with or without ids and names,
// finish reasons, usage) and checks that the output is always a valid event
// sequence, that text and thinking arrive whole, and that every tool_use
// block's input fragments concatenate to exactly what the engine sent for
// that call (for valid UTF-8; invalid bytes become U+FFFD, as in any JSON).
// Seeds: testdata/fuzz/FuzzStreamEncoder.
//
//	go test ./internal/translate/anthropic -run '^$' -fuzz FuzzStreamEncoder -fuzztime 60s
func FuzzStreamEncoder(f *testing.F) {
	f.Add([]byte{0, 1, 2, 17, 32, 3, 4}, `think|Hello|{"a":|1}|x`)
	f.Fuzz(func(t *testing.T, ops []byte, text string) {
		if len(ops) > 256 {
			ops = ops[:256]
		}
		frags := strings.Split(text, "|")
		next := 0
		frag := func() string {
			s := frags[next%len(frags)]
			next++
			return s
		}
		enc := anthropic.NewStreamEncoder(anthropic.Meta{ID: "msg_f", Model: "m"}, 1)
		out := enc.AppendStart(nil)
		var wantText, wantThinking strings.Builder
		args := map[string]*strings.Builder{} // by name: each fuzzed call has a distinct name
		named := map[int]string{}
		var err error
		for _, b := range ops {
			var c canonical.Chunk
			switch b % 5 {
			case 0:
				c.Reasoning = frag()
			case 1:
				c.Content = frag()
			case 2:
				idx := int(b/5) % 3
				d := canonical.ToolCallDelta{Index: idx, Arguments: frag()}
				if b/15%2 == 1 {
					d.ID = "id" + string(rune('a'+idx))
				}
				if b/30%2 == 1 || named[idx] != "" {
					d.Name = "fn" + string(rune('a'+idx))
					named[idx] = d.Name
				}
				c.ToolCalls = []canonical.ToolCallDelta{d}
			case 3:
				c.FinishReason = []canonical.FinishReason{canonical.FinishStop, canonical.FinishLength, canonical.FinishToolCalls}[int(b/5)%3]
			case 4:
				c.Usage = &canonical.Usage{Prompt: int64(b), Completion: int64(b / 2)}
			}
			out, err = enc.AppendChunk(out, &c)
			if err != nil {
				break
			}
			wantThinking.WriteString(c.Reasoning)
			wantText.WriteString(c.Content)
			for _, d := range c.ToolCalls {
				name := "fn" + string(rune('a'+d.Index))
				if args[name] == nil {
					args[name] = &strings.Builder{}
				}
				args[name].WriteString(d.Arguments)
			}
		}
		if err != nil {
			if !errors.Is(err, anthropic.ErrToolCallOrder) {
				t.Fatalf("unexpected error %v", err)
			}
			out = anthropic.AppendStreamError(out, &canonical.Error{Kind: canonical.KindBackend, Message: err.Error()}, "")
		} else {
			out = enc.AppendFinish(out)
		}
		events, perr := anthropictest.Parse(out)
		if perr != nil {
			t.Fatalf("parse: %v", perr)
		}
		m, ferr := anthropictest.Fold(events)
		if ferr != nil {
			t.Fatalf("invalid event sequence: %v\n%s", ferr, out)
		}
		if err != nil || !utf8.ValidString(text) {
			// Invalid UTF-8 becomes U+FFFD in JSON; engines' decoded text is always valid.
			return
		}
		var gotText, gotThinking strings.Builder
		for _, blk := range m.Blocks {
			gotText.WriteString(blk.Text)
			gotThinking.WriteString(blk.Thinking)
			if blk.Type == "tool_use" && blk.Input != args[blk.Name].String() {
				t.Fatalf("tool %s input %q, engine sent %q", blk.Name, blk.Input, args[blk.Name].String())
			}
		}
		if gotText.String() != wantText.String() || gotThinking.String() != wantThinking.String() {
			t.Fatalf("text or thinking changed: %q/%q want %q/%q", gotText.String(), gotThinking.String(), wantText.String(), wantThinking.String())
		}
	})
}
