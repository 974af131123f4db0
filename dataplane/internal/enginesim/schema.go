package enginesim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// maxSchemaDepth bounds the nesting the generator follows ($ref cycles,
// deeply nested schemas): past it a value is null, or an empty object or
// array where the schema's type demands one.
const maxSchemaDepth = 12

// formatSchema returns the JSON Schema a request's output is constrained to,
// as a real engine with constrained decoding reads it: Ollama's "format"
// ("json" or a schema) or vLLM's response_format (json_object or
// json_schema). ok is false for free text. A json_object or "json" request
// gets the empty schema (any JSON object).
func formatSchema(raw json.RawMessage) (schema map[string]any, ok bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, false
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, false
	}
	switch f := v.(type) {
	case string: // Ollama "json"
		if f == "json" {
			return map[string]any{"type": "object"}, true
		}
	case map[string]any:
		t, _ := f["type"].(string)
		switch t {
		case "json_object":
			return map[string]any{"type": "object"}, true
		case "json_schema":
			js, _ := f["json_schema"].(map[string]any)
			s, _ := js["schema"].(map[string]any)
			if s == nil {
				s = map[string]any{"type": "object"}
			}
			return s, true
		case "text":
			return nil, false
		}
		return f, true // Ollama: the schema itself
	}
	return nil, false
}

// schemaJSON returns JSON text valid for schema: what a constrained decoder
// would emit for an unscripted reply.
func schemaJSON(schema map[string]any) string {
	g := schemaGen{root: schema}
	b, err := json.Marshal(g.value(schema, "value", 0))
	if err != nil { // unreachable: the generator builds plain JSON values
		return "{}"
	}
	return string(b)
}

// schemaGen generates values for the subschemas of one root schema.
type schemaGen struct {
	root map[string]any
}

// value returns a value valid for s; name (the property's name) seeds strings.
func (g schemaGen) value(s map[string]any, name string, depth int) any {
	if depth > maxSchemaDepth {
		return g.shallow(s)
	}
	if ref, ok := s["$ref"].(string); ok {
		if target := g.resolve(ref); target != nil {
			return g.value(target, name, depth+1)
		}
	}
	if c, ok := s["const"]; ok {
		return c
	}
	if e, ok := s["enum"].([]any); ok && len(e) > 0 {
		return e[0]
	}
	for _, key := range []string{"anyOf", "oneOf"} {
		if alts, ok := s[key].([]any); ok && len(alts) > 0 {
			if a, ok := alts[0].(map[string]any); ok {
				return g.value(a, name, depth+1)
			}
		}
	}
	if all, ok := s["allOf"].([]any); ok && len(all) > 0 {
		return g.value(mergeAll(s, all), name, depth+1)
	}
	switch schemaType(s) {
	case "object":
		return g.object(s, depth)
	case "array":
		return g.array(s, name, depth)
	case "string":
		return stringValue(s, name)
	case "integer":
		return int64(numberValue(s, true))
	case "number":
		return numberValue(s, false)
	case "boolean":
		return true
	case "null":
		return nil
	}
	return g.object(s, depth)
}

// shallow is the smallest value of s's type, for schemas nested too deep.
func (g schemaGen) shallow(s map[string]any) any {
	switch schemaType(s) {
	case "object":
		return map[string]any{}
	case "array":
		return []any{}
	case "string":
		return ""
	case "integer", "number":
		return 0
	case "boolean":
		return false
	}
	return nil
}

// object fills every declared property (required ones and the others, as a
// model usually does) in a JSON object.
func (g schemaGen) object(s map[string]any, depth int) any {
	out := map[string]any{}
	props, _ := s["properties"].(map[string]any)
	for k, p := range props {
		ps, _ := p.(map[string]any)
		out[k] = g.value(ps, k, depth+1)
	}
	if req, ok := s["required"].([]any); ok { // required names without a property schema
		for _, r := range req {
			if k, ok := r.(string); ok {
				if _, done := out[k]; !done {
					out[k] = stringValue(nil, k)
				}
			}
		}
	}
	return out
}

func (g schemaGen) array(s map[string]any, name string, depth int) any {
	n := 1
	if depth >= maxSchemaDepth/2 { // deep (recursive) schemas end with the fewest items allowed
		n = 0
	}
	if v, ok := s["minItems"].(float64); ok && int(v) > n {
		n = min(int(v), 16)
	}
	if v, ok := s["maxItems"].(float64); ok && int(v) < n {
		n = int(v)
	}
	items, _ := s["items"].(map[string]any)
	prefix, _ := s["prefixItems"].([]any)
	out := make([]any, 0, max(n, len(prefix)))
	for i := range max(n, len(prefix)) {
		it := items
		if i < len(prefix) {
			it, _ = prefix[i].(map[string]any)
		}
		v := g.value(it, fmt.Sprintf("%s %d", name, i+1), depth+1)
		if str, ok := v.(string); ok && s["uniqueItems"] == true && i > 0 {
			v = str + fmt.Sprint(i)
		}
		out = append(out, v)
	}
	return out
}

// resolve follows a local reference ("#/$defs/x", "#/definitions/x", "#").
func (g schemaGen) resolve(ref string) map[string]any {
	if !strings.HasPrefix(ref, "#") {
		return nil
	}
	var cur any = g.root
	for _, part := range strings.Split(strings.TrimPrefix(ref, "#"), "/") {
		if part == "" {
			continue
		}
		part = strings.NewReplacer("~1", "/", "~0", "~").Replace(part)
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[part]
	}
	m, _ := cur.(map[string]any)
	return m
}

// mergeAll merges the allOf subschemas' keywords into one schema (properties
// and required lists combined), enough for the object shapes clients send.
func mergeAll(s map[string]any, all []any) map[string]any {
	out := map[string]any{}
	props := map[string]any{}
	var req []any
	add := func(m map[string]any) {
		for k, v := range m {
			switch k {
			case "allOf":
			case "properties":
				pm, _ := v.(map[string]any)
				for pk, pv := range pm {
					props[pk] = pv
				}
			case "required":
				r, _ := v.([]any)
				req = append(req, r...)
			default:
				out[k] = v
			}
		}
	}
	add(s)
	for _, a := range all {
		if m, ok := a.(map[string]any); ok {
			add(m)
		}
	}
	if len(props) > 0 {
		out["properties"] = props
		if _, ok := out["type"]; !ok {
			out["type"] = "object"
		}
	}
	if len(req) > 0 {
		out["required"] = req
	}
	return out
}

// schemaType is s's type: the first non-null one of a type list, or one
// implied by other keywords; "" when nothing says.
func schemaType(s map[string]any) string {
	switch t := s["type"].(type) {
	case string:
		return t
	case []any:
		for _, x := range t {
			if str, ok := x.(string); ok && str != "null" {
				return str
			}
		}
		if len(t) > 0 {
			return "null"
		}
	}
	switch {
	case s["properties"] != nil:
		return "object"
	case s["items"] != nil, s["prefixItems"] != nil:
		return "array"
	}
	return ""
}

// stringValue is a string that honours the length bounds and common formats.
func stringValue(s map[string]any, name string) string {
	switch s["format"] {
	case "date-time":
		return "2024-01-01T00:00:00Z"
	case "date":
		return "2024-01-01"
	case "time":
		return "00:00:00Z"
	case "email":
		return "sim@example.com"
	case "uri", "url":
		return "https://example.com/sim"
	case "uuid":
		return "00000000-0000-4000-8000-000000000000"
	case "ipv4":
		return "192.0.2.1"
	}
	v := "sim " + name
	if m, ok := s["maxLength"].(float64); ok && len(v) > int(m) {
		v = v[:max(int(m), 0)]
	}
	if m, ok := s["minLength"].(float64); ok && len(v) < int(m) {
		v += strings.Repeat("x", int(m)-len(v))
	}
	return v
}

// numberValue is a number within the bounds (1 when unbounded).
func numberValue(s map[string]any, integer bool) float64 {
	v := 1.0
	lo, hasLo := s["minimum"].(float64)
	if xlo, ok := s["exclusiveMinimum"].(float64); ok {
		lo, hasLo = xlo+0.5, true
		if integer {
			lo = xlo + 1
		}
	}
	hi, hasHi := s["maximum"].(float64)
	if xhi, ok := s["exclusiveMaximum"].(float64); ok {
		hi, hasHi = xhi-0.5, true
		if integer {
			hi = xhi - 1
		}
	}
	if hasLo && v < lo {
		v = lo
	}
	if hasHi && v > hi {
		v = hi
	}
	if m, ok := s["multipleOf"].(float64); ok && m > 0 {
		v = m * float64(int64(v/m+0.999999))
	}
	if integer {
		v = float64(int64(v))
		if hasLo && v < lo {
			v++
		}
	}
	return v
}
