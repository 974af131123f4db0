package ollama

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
)

// ModelDetails is the details object of /api/tags, /api/ps and /api/show.
type ModelDetails struct {
	ParentModel       string   `json:"parent_model"`
	Format            string   `json:"format"`
	Family            string   `json:"family"`
	Families          []string `json:"families"`
	ParameterSize     string   `json:"parameter_size"`
	QuantizationLevel string   `json:"quantization_level"`
}

// ListModel is one model of GET /api/tags. IsAlias and AliasTarget mark an
// alias, as the original MindRouter did.
type ListModel struct {
	Name        string       `json:"name"`
	Model       string       `json:"model"`
	ModifiedAt  string       `json:"modified_at"`
	Size        int64        `json:"size"`
	Digest      string       `json:"digest"`
	Details     ModelDetails `json:"details"`
	IsAlias     bool         `json:"is_alias,omitempty"`
	AliasTarget string       `json:"alias_target,omitempty"`
}

// ListResponse is the answer of GET /api/tags.
type ListResponse struct {
	Models []ListModel `json:"models"`
}

// ProcessModel is one loaded model of GET /api/ps.
type ProcessModel struct {
	Name          string       `json:"name"`
	Model         string       `json:"model"`
	Size          int64        `json:"size"`
	Digest        string       `json:"digest"`
	Details       ModelDetails `json:"details"`
	ExpiresAt     string       `json:"expires_at"`
	SizeVRAM      int64        `json:"size_vram"`
	ContextLength int64        `json:"context_length"`
}

// ProcessResponse is the answer of GET /api/ps.
type ProcessResponse struct {
	Models []ProcessModel `json:"models"`
}

// ShowRequest is the body of POST /api/show; Name is the older spelling of
// Model.
type ShowRequest struct {
	Model   string `json:"model"`
	Name    string `json:"name"`
	Verbose bool   `json:"verbose,omitempty"`
}

// ShowResponse is the answer of POST /api/show.
type ShowResponse struct {
	Modelfile    string         `json:"modelfile,omitempty"`
	Parameters   string         `json:"parameters,omitempty"`
	Details      ModelDetails   `json:"details"`
	ModelInfo    map[string]any `json:"model_info"`
	Capabilities []string       `json:"capabilities,omitempty"`
	ModifiedAt   string         `json:"modified_at,omitempty"`
}

// VersionResponse is the answer of GET /api/version.
type VersionResponse struct {
	Version string `json:"version"`
}

// ModelCard is what the gateway tells Ollama clients about one model.
type ModelCard struct {
	Name          string
	Family        string
	ParameterSize string
	Quantization  string
	// Format is the weights' format, "gguf" for Ollama engines.
	Format string
	// ContextLength is the context window the gateway allows.
	ContextLength   int64
	EmbeddingLength int64
	// Capabilities are Ollama's names: completion, tools, vision, embedding,
	// thinking.
	Capabilities []string
	ModifiedAt   time.Time
	// AliasTarget is the first real model of an alias; empty for a model.
	AliasTarget string
}

// Digest is the model's digest as the gateway shows it: the SHA-256 of its
// name, since the gateway does not see the weights (and a model may be served
// by several backends). Ollama clients print the first 12 characters.
func (c *ModelCard) Digest() string {
	sum := sha256.Sum256([]byte(c.Name))
	return hex.EncodeToString(sum[:])
}

func (c *ModelCard) details() ModelDetails {
	d := ModelDetails{Format: c.Format, Family: c.Family, ParameterSize: c.ParameterSize, QuantizationLevel: c.Quantization}
	if c.Family != "" {
		d.Families = []string{c.Family}
	}
	return d
}

// architecture is the key prefix of model_info.
func (c *ModelCard) architecture() string {
	if c.Family == "" {
		return "unknown"
	}
	return c.Family
}

// EncodeTags writes the answer of GET /api/tags.
func EncodeTags(cards []ModelCard) ([]byte, error) {
	out := ListResponse{Models: make([]ListModel, 0, len(cards))}
	for i := range cards {
		c := &cards[i]
		out.Models = append(out.Models, ListModel{Name: c.Name, Model: c.Name, ModifiedAt: FormatTime(c.ModifiedAt),
			Digest: c.Digest(), Details: c.details(), IsAlias: c.AliasTarget != "", AliasTarget: c.AliasTarget})
	}
	return json.Marshal(&out)
}

// EncodePS writes the answer of GET /api/ps; expires is written as every
// model's expires_at.
func EncodePS(cards []ModelCard, expires time.Time) ([]byte, error) {
	out := ProcessResponse{Models: make([]ProcessModel, 0, len(cards))}
	for i := range cards {
		c := &cards[i]
		out.Models = append(out.Models, ProcessModel{Name: c.Name, Model: c.Name, Digest: c.Digest(), Details: c.details(),
			ExpiresAt: FormatTime(expires), ContextLength: c.ContextLength})
	}
	return json.Marshal(&out)
}

// EncodeShow writes the answer of POST /api/show: details, capabilities, a
// model_info whose "<family>.context_length" is the context window the
// gateway allows, and a Modelfile and parameters that say the same.
func EncodeShow(c *ModelCard) ([]byte, error) {
	arch := c.architecture()
	info := map[string]any{"general.architecture": arch}
	if c.ContextLength > 0 {
		info[arch+".context_length"] = c.ContextLength
	}
	if c.EmbeddingLength > 0 {
		info[arch+".embedding_length"] = c.EmbeddingLength
	}
	out := ShowResponse{
		Modelfile:    fmt.Sprintf("# Served through the MindRouter gateway\nFROM %s\n", c.Name),
		Details:      c.details(),
		ModelInfo:    info,
		Capabilities: c.Capabilities,
		ModifiedAt:   FormatTime(c.ModifiedAt),
	}
	if c.ContextLength > 0 {
		out.Modelfile += "PARAMETER num_ctx " + strconv.FormatInt(c.ContextLength, 10) + "\n"
		out.Parameters = fmt.Sprintf("%-30s %d", "num_ctx", c.ContextLength)
	}
	return json.Marshal(&out)
}

// DecodeShowRequest returns the model a POST /api/show body names.
func DecodeShowRequest(body []byte) (string, error) {
	var w ShowRequest
	if err := json.Unmarshal(body, &w); err != nil {
		return "", canonical.DecodeError(err)
	}
	model := w.Model
	if model == "" {
		model = w.Name
	}
	if strings.TrimSpace(model) == "" {
		return "", canonical.Invalid("model", "model is required")
	}
	return model, nil
}

// EncodeVersion writes the answer of GET /api/version.
func EncodeVersion(version string) []byte {
	b, _ := json.Marshal(VersionResponse{Version: version})
	return b
}
