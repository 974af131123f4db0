package canonical

// EffortForBudget maps a thinking token budget (Anthropic budget_tokens) to
// the effort level engines understand: under 4096 tokens "low", under 16384
// "medium", else "high". Neither Ollama nor vLLM can cap reasoning tokens
// themselves.
func EffortForBudget(budget int64) string {
	switch {
	case budget < 4096:
		return "low"
	case budget < 16384:
		return "medium"
	}
	return "high"
}
