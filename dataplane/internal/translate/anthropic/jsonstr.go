package anthropic

import "github.com/mindrouter/mindrouter/dataplane/internal/jsonw"

// appendString appends s as a JSON string, as encoding/json writes it without
// HTML escaping (package jsonw).
func appendString(dst []byte, s string) []byte { return jsonw.String(dst, s) }

// appendInt appends n in decimal.
func appendInt(dst []byte, n int64) []byte { return jsonw.Int(dst, n) }
