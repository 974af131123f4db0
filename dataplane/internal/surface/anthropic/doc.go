// Package anthropic is the Anthropic-compatible HTTP surface: POST
// /anthropic/v1/messages (also served at /v1/messages), whole or streamed as
// Anthropic's event sequence with pings; POST
// /anthropic/v1/messages/count_tokens (and /v1/messages/count_tokens); GET
// /anthropic/v1/models and /anthropic/v1/models/{id}. It takes the key from
// x-api-key (what Anthropic SDKs send) or "Authorization: Bearer", accepts and
// ignores anthropic-version and anthropic-beta, decodes with
// translate/anthropic, hands the canonical request to the relay and writes
// the answer, the stream and every error in Anthropic's own shapes.
//
// All mapping of errors to the Anthropic envelope is in errors.go. The package
// must not call engines or the control plane's admission directly: the relay
// does.
package anthropic
