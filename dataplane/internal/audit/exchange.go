package audit

// Exchange records a request that is no chat (a web search): its model, its
// request as JSON, the text it asked (the query) and the text of its answer.
// Finish keeps them as the record's request, prompt and response.
func (e *Entry) Exchange(model, requestJSON, prompt, response string) {
	if e == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rec.Model = model
	e.rec.RequestJson, e.rec.PromptText, e.rec.ResponseText = requestJSON, prompt, response
}
