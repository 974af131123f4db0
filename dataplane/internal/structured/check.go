package structured

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
)

// schemaURL names the client's schema inside the compiler.
const schemaURL = "mem:///response_format.json"

// Check validates answers against one request's response format. A nil
// *Check accepts everything.
type Check struct {
	format *canonical.ResponseFormat
	schema *jsonschema.Schema // nil for json_object
}

// New compiles the request's format. It returns nil for free text and a
// KindInvalidRequest error naming the schema when the schema does not
// compile.
func New(rf *canonical.ResponseFormat) (*Check, error) {
	if rf == nil || rf.Type == canonical.FormatText || rf.Type == "" {
		return nil, nil
	}
	c := &Check{format: rf}
	if rf.Type != canonical.FormatJSONSchema || len(bytes.TrimSpace(rf.Schema)) == 0 {
		return c, nil
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(rf.Schema))
	if err != nil {
		return nil, invalidSchema(err)
	}
	comp := jsonschema.NewCompiler()
	comp.UseLoader(refuseLoader{})
	if err := comp.AddResource(schemaURL, doc); err != nil {
		return nil, invalidSchema(err)
	}
	if c.schema, err = comp.Compile(schemaURL); err != nil {
		return nil, invalidSchema(err)
	}
	return c, nil
}

func invalidSchema(err error) *canonical.Error {
	msg := strings.ReplaceAll(firstLines(err.Error(), 3), schemaURL, "schema")
	return &canonical.Error{Kind: canonical.KindInvalidRequest, Param: "response_format.json_schema.schema",
		Message: "the response format's JSON Schema is not valid: " + msg, Err: err}
}

// refuseLoader refuses every external reference.
type refuseLoader struct{}

func (refuseLoader) Load(url string) (any, error) {
	return nil, errors.New("external schema references are not allowed")
}

// Response checks every choice of a complete answer. A choice that called
// tools is not checked (the model chose a tool over an answer).
func (c *Check) Response(resp *canonical.Response) error {
	if c == nil {
		return nil
	}
	for i := range resp.Choices {
		ch := &resp.Choices[i]
		if len(ch.Message.ToolCalls) > 0 {
			continue
		}
		if err := c.Text(ch.Message.Text(), ch.FinishReason); err != nil {
			if len(resp.Choices) > 1 {
				err.Message = fmt.Sprintf("choice %d: %s", ch.Index, err.Message)
			}
			return err
		}
	}
	return nil
}

// Text checks one answer text; finish says why the model stopped, to explain
// an empty or cut-off answer.
func (c *Check) Text(text string, finish canonical.FinishReason) *canonical.Error {
	if c == nil {
		return nil
	}
	trimmed := strings.TrimSpace(text)
	if trimmed == "" {
		if finish == canonical.FinishLength {
			return canonical.InvalidOutput("the model produced no structured output before reaching the token limit " +
				"(reasoning may have used the whole budget); raise max_tokens or turn thinking off")
		}
		return canonical.InvalidOutput("the model produced no structured output (empty content)")
	}
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(trimmed))
	if err != nil {
		msg := "the model's output is not valid JSON"
		if finish == canonical.FinishLength {
			msg += " (it was cut off at the token limit; raise max_tokens)"
		}
		return canonical.InvalidOutput(msg)
	}
	if c.schema == nil {
		if _, ok := inst.(map[string]any); !ok {
			return canonical.InvalidOutput("the model's output is JSON but not a JSON object")
		}
		return nil
	}
	if err := c.schema.Validate(inst); err != nil {
		return canonical.InvalidOutput("the model's output does not match the JSON Schema: " + validationMessage(err))
	}
	return nil
}

// validationMessage shortens the validator's report to its first causes.
func validationMessage(err error) string {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return err.Error()
	}
	lines := strings.Split(ve.Error(), "\n")
	if len(lines) > 1 {
		lines = lines[1:] // "jsonschema validation failed with 'mem:///…#'"
	}
	for i, l := range lines {
		lines[i] = strings.TrimLeft(strings.TrimSpace(l), "- ")
	}
	return firstLines(strings.Join(lines, "\n"), 3)
}

// firstLines keeps at most n lines, joined by "; ".
func firstLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = append(lines[:n], "…")
	}
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return strings.Join(lines, "; ")
}
