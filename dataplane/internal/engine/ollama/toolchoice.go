package ollama

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/engine"
	wire "github.com/mindrouter/mindrouter/dataplane/internal/translate/ollama"
)

// toolChoiceTries is how many calls a required tool call gets: Ollama cannot
// force one, so an answer without it is asked for once more.
const toolChoiceTries = 2

// CodeToolCallMissing is the error code of an answer that did not make the
// tool call tool_choice required.
const CodeToolCallMissing = "tool_call_missing"

// chatChoice is chatOnce with tool_choice enforced: when the request requires
// a tool call (wire.ToolCallRequired) and the answer has none (or none of the
// named function), the call is made once more, then refused with
// errToolCallMissing.
func (e *Engine) chatChoice(ctx context.Context, t engine.Target, req *canonical.Request) (*canonical.Response, error) {
	required, name := wire.ToolCallRequired(req)
	if !required {
		return e.chatOnce(ctx, t, req)
	}
	for try := range toolChoiceTries {
		out, err := e.chatOnce(ctx, t, req)
		if err != nil {
			e.tried(ctx, t, try, retryFailed)
			return nil, err
		}
		if len(out.Choices) > 0 && hasCall(out.Choices[0].Message.ToolCalls, name) {
			e.tried(ctx, t, try, retryRecovered)
			return out, nil
		}
	}
	e.tried(ctx, t, toolChoiceTries-1, retryMissing)
	return nil, errToolCallMissing(name)
}

// streamChoice is streamOnce with tool_choice enforced as in chatChoice. A
// stream cannot be taken back once a byte reached the client, so when a tool
// call is required the stream is held back: its chunks are buffered and sent
// only once the answer is known to make the call (Ollama sends each tool call
// whole, at the end of the turn, so nothing could be checked earlier). The
// client therefore sees the whole answer at once rather than token by token.
func (e *Engine) streamChoice(ctx context.Context, t engine.Target, req *canonical.Request, emit func(canonical.Chunk) error) error {
	required, name := wire.ToolCallRequired(req)
	if !required {
		return e.streamOnce(ctx, t, req, emit)
	}
	for try := range toolChoiceTries {
		var held []canonical.Chunk
		var calls []canonical.ToolCall
		err := e.streamOnce(ctx, t, req, func(c canonical.Chunk) error {
			held = append(held, c)
			for _, d := range c.ToolCalls {
				calls = append(calls, canonical.ToolCall{Name: d.Name})
			}
			return nil
		})
		if err != nil {
			e.tried(ctx, t, try, retryFailed)
			return err
		}
		if hasCall(calls, name) {
			e.tried(ctx, t, try, retryRecovered)
			for _, c := range held {
				if err := emit(c); err != nil {
					return err
				}
			}
			return nil
		}
	}
	e.tried(ctx, t, toolChoiceTries-1, retryMissing)
	return errToolCallMissing(name)
}

// tried records how a tool-choice call ended when it was a retry (try > 0):
// counted by result, and logged when the client is refused for the missing call.
func (e *Engine) tried(ctx context.Context, t engine.Target, try int, result string) {
	if try == 0 {
		return
	}
	e.cfg.Metrics.toolChoiceRetry(result)
	if result == retryMissing {
		e.cfg.Logger.WarnContext(ctx, "the model answered without the tool call tool_choice required, twice; refused with tool_call_missing",
			slog.String("model", t.Model), slog.String("backend_url", t.URL), slog.Int("tries", toolChoiceTries))
	}
}

// hasCall reports whether calls has a call, of the named function when name
// is not empty.
func hasCall(calls []canonical.ToolCall, name string) bool {
	for _, c := range calls {
		if name == "" || c.Name == name {
			return true
		}
	}
	return false
}

// errToolCallMissing is the client's error when Ollama answered twice without
// the required call: a 502, since the request was valid and the backend's
// answer is what failed the contract (a 422 would blame the client's input).
// It is not retryable on another backend: the same model would most likely
// answer the same way, and the two tries have been paid for.
func errToolCallMissing(name string) error {
	what := "a tool call"
	if name != "" {
		what = "a call of the function " + strconv.Quote(name)
	}
	return &canonical.Error{
		Kind: canonical.KindBackend, Code: CodeToolCallMissing, Param: "tool_choice",
		Message: fmt.Sprintf("tool_choice requires %s, but the model answered without one in %d tries; "+
			"this model is served by Ollama, which cannot force a tool call", what, toolChoiceTries),
	}
}
