package ollama

import (
	"strings"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
)

// withThink adapts the reasoning control to what Ollama accepts for model:
// Ollama takes a level ("low", "medium", "high") only for models whose
// output it parses as harmony (gpt-oss) and answers 400 for any other, so
// other models get true instead; and Anthropic's budget_tokens, which
// Ollama cannot honour, becomes a level for gpt-oss (see EffortForBudget).
func withThink(req *canonical.Request, model string) *canonical.Request {
	t := req.Think
	if t == nil || !t.Enabled {
		return req
	}
	effort := t.Effort
	if effort == "" && t.BudgetTokens > 0 {
		effort = canonical.EffortForBudget(t.BudgetTokens)
	}
	if !levelled(model) {
		effort = ""
	}
	if effort == t.Effort {
		return req
	}
	r := *req
	r.Think = &canonical.Thinking{Enabled: true, Effort: effort, BudgetTokens: t.BudgetTokens}
	return &r
}

// levelled reports whether Ollama takes a thinking level for model.
func levelled(model string) bool { return strings.Contains(strings.ToLower(model), "gpt-oss") }
