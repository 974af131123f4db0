package canonical

// CodeInvalidOutput is the Code of the KindUnprocessable error returned when a
// non-streamed answer does not match the structured output the client asked
// for (response_format json_object or json_schema, Ollama format, Anthropic
// output_config.format): the model answered, but not in the promised shape.
// Every dialect reports it as HTTP 422 in its own envelope.
const CodeInvalidOutput = "invalid_structured_output"

// InvalidOutput returns the error for an answer that broke its structured
// output contract; message says how.
func InvalidOutput(message string) *Error {
	return &Error{Kind: KindUnprocessable, Code: CodeInvalidOutput, Message: message}
}
