package openai

import "encoding/json"

// Model is one entry of GET /v1/models: OpenAI's four fields plus the
// gateway's catalog extras.
type Model struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
	// ContextLength is the context window in tokens; ModelMaxContext repeats it
	// under the original MindRouter's second name.
	ContextLength   int64        `json:"context_length,omitempty"`
	ModelMaxContext int64        `json:"model_max_context,omitempty"`
	Capabilities    Capabilities `json:"capabilities"`
	Family          string       `json:"family,omitempty"`
	ParameterSize   string       `json:"parameter_size,omitempty"`
	Quantization    string       `json:"quantization,omitempty"`
	// Simulated marks a model served only by the engine simulator.
	Simulated bool `json:"simulated,omitempty"`
	// DisplayName and Description are an administrator's metadata.
	DisplayName string `json:"display_name,omitempty"`
	Description string `json:"description,omitempty"`
	// IsAlias and AliasTarget mark an alias, as the original MindRouter did;
	// AliasTargets lists every real model it stands for.
	IsAlias      bool     `json:"is_alias,omitempty"`
	AliasTarget  string   `json:"alias_target,omitempty"`
	AliasTargets []string `json:"alias_targets,omitempty"`
}

// Capabilities says what a model can do.
type Capabilities struct {
	Multimodal       bool `json:"multimodal"`
	Embeddings       bool `json:"embeddings"`
	StructuredOutput bool `json:"structured_output"`
	Thinking         bool `json:"thinking"`
	Tools            bool `json:"tools"`
}

// ModelList is the body of GET /v1/models.
type ModelList struct {
	Object string  `json:"object"`
	Data   []Model `json:"data"`
}

// EncodeModelList writes the model list; Object and OwnedBy are filled in.
func EncodeModelList(models []Model) ([]byte, error) {
	list := ModelList{Object: "list", Data: make([]Model, 0, len(models))}
	for _, m := range models {
		m.Object = "model"
		m.OwnedBy = "mindrouter"
		list.Data = append(list.Data, m)
	}
	return json.Marshal(list)
}
