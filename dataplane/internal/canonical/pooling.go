package canonical

// EmbeddingRequest asks for one embedding vector per input text, whichever
// dialect it came in (OpenAI /v1/embeddings, Ollama /api/embed and
// /api/embeddings).
type EmbeddingRequest struct {
	// Model is the model name the client asked for.
	Model string
	// Input holds the texts to embed, in order; never empty.
	Input []string
	// Dimensions asks for shorter vectors (Matryoshka models); 0 means the
	// model's own length.
	Dimensions int
	// Truncate is Ollama's truncate switch (cut inputs longer than the
	// context window instead of failing); nil leaves the engine's default.
	Truncate *bool
	// User is the client's end-user tag, if any.
	User string
}

// EmbeddingResponse is one vector per input, in input order. Vectors are
// float32, as every engine computes them; surfaces encode them as JSON
// numbers or, for OpenAI's encoding_format "base64", as little-endian float32
// bytes.
type EmbeddingResponse struct {
	// Model is the model name the engine reported.
	Model      string
	Embeddings [][]float32
	// Usage counts the input tokens (Completion is always 0); nil when the
	// engine reported none.
	Usage *Usage
}

// RerankRequest asks a cross-encoder to order documents by relevance to a
// query (vLLM /rerank, Cohere- and Jina-compatible).
type RerankRequest struct {
	Model     string
	Query     string
	Documents []string
	// TopN keeps only the best n results; 0 keeps all.
	TopN int
	// ReturnDocuments asks for each result's document text in the answer.
	ReturnDocuments bool
	User            string
}

// RerankResult is one scored document.
type RerankResult struct {
	// Index is the document's position in the request.
	Index int
	// Score is the relevance score; higher is more relevant.
	Score float64
	// Document is the document's text when the client asked for it.
	Document string
}

// RerankResponse lists the results, most relevant first.
type RerankResponse struct {
	Model   string
	Results []RerankResult
	// Usage counts the input tokens; nil when the engine reported none.
	Usage *Usage
}

// ScoreRequest asks for the similarity of text pairs (vLLM /score): one
// Text1 against every Text2, or Text1[i] against Text2[i] when both have the
// same length.
type ScoreRequest struct {
	Model string
	Text1 []string
	Text2 []string
	User  string
}

// ScoreResponse holds one score per pair, in pair order.
type ScoreResponse struct {
	Model  string
	Scores []float64
	// Usage counts the input tokens; nil when the engine reported none.
	Usage *Usage
}
