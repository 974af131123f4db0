package relay

import (
	"context"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/engine"
	"github.com/mindrouter/mindrouter/dataplane/internal/reasoning"
)

// chat runs one non-streamed chat attempt.
func (a *attempt) chat(ctx context.Context, eng engine.Engine, t engine.Target) (*canonical.Response, error) {
	if err := a.resolveImages(ctx); err != nil {
		return nil, err
	}
	resp, err := eng.Chat(ctx, t, a.call.Request)
	if err != nil {
		return nil, err
	}
	a.ttft = a.relay.cfg.Now().Sub(a.start)
	if !a.relay.cfg.KeepThinkTags {
		extractThink(resp)
	}
	a.counter.AddResponse(resp)
	a.usage = resp.Usage
	return resp, nil
}

// chatStream runs one streamed chat attempt.
func (a *attempt) chatStream(ctx context.Context, eng engine.Engine, t engine.Target) error {
	if err := a.resolveImages(ctx); err != nil {
		return err
	}
	if err := eng.ChatStream(ctx, t, a.call.Request, a.emit); err != nil {
		return err
	}
	return a.flushThink()
}

// resolveImages fetches the request's images given by URL, once: the first
// attempt replaces them in the request, so a retry finds none left. It runs
// after admission, so that only a valid credential can make the gateway
// fetch anything.
func (a *attempt) resolveImages(ctx context.Context) error {
	if a.relay.cfg.Images == nil || !hasImageURL(a.call.Request) {
		return nil
	}
	return a.relay.cfg.Images.Resolve(ctx, a.call.Request)
}

func hasImageURL(req *canonical.Request) bool {
	for i := range req.Messages {
		for _, p := range req.Messages[i].Content {
			if p.Type == canonical.PartImage && p.Image != nil && p.Image.Data == "" {
				return true
			}
		}
	}
	return false
}

// extractThink moves a leading <think> block of each answer's text to its
// reasoning, unless the engine already separated the reasoning.
func extractThink(resp *canonical.Response) {
	for i := range resp.Choices {
		m := &resp.Choices[i].Message
		if m.Reasoning != "" {
			continue
		}
		r, content, ok := reasoning.Split(m.Text())
		if !ok {
			continue
		}
		m.Reasoning = r
		m.Content = nil
		if content != "" {
			m.Content = []canonical.Part{canonical.TextPart(content)}
		}
	}
}

// splitThink moves a leading <think> block of a streamed choice's content to
// its reasoning, holding back only what may still be part of a tag. A choice
// whose engine sends reasoning of its own is left alone from then on.
func (a *attempt) splitThink(c *canonical.Chunk) {
	if a.think == nil {
		a.think = map[int]*reasoning.Splitter{}
	}
	sp := a.think[c.Choice]
	if sp == nil {
		sp = &reasoning.Splitter{}
		a.think[c.Choice] = sp
	}
	if !sp.Active() {
		return
	}
	if c.Reasoning != "" {
		_, held := sp.Flush()
		c.Content = held + c.Content
		return
	}
	r, content := sp.Push(c.Content)
	c.Reasoning, c.Content = r, content
	if c.FinishReason != "" {
		r, content := sp.Flush()
		c.Reasoning += r
		c.Content += content
	}
}

// flushThink delivers what the splitters still hold when a stream ended
// without a finish reason.
func (a *attempt) flushThink() error {
	for choice, sp := range a.think {
		if !sp.Active() {
			continue
		}
		r, content := sp.Flush()
		c := canonical.Chunk{Choice: choice, Reasoning: r, Content: content}
		if c.Empty() {
			continue
		}
		a.counter.Add(&c)
		if err := a.deliver(c); err != nil {
			return err
		}
	}
	return nil
}
