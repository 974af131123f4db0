package canonical

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"
)

// DecodeError turns an encoding/json decoding error into a client-facing one
// that never shows Go's own wording (type names such as
// "ollama.ChatRequest"): a body that is not an object, a field of the wrong
// JSON type (Param names it), a syntax error (a truncated body among them) with its offset.
func DecodeError(err error) *Error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		if typeErr.Field == "" {
			return &Error{Kind: KindInvalidRequest, Message: "request body must be a JSON object", Err: err}
		}
		return &Error{Kind: KindInvalidRequest, Param: typeErr.Field,
			Message: Echo(fmt.Sprintf("invalid type for %q: got %s", typeErr.Field, typeErr.Value)), Err: err}
	}
	var syntaxErr *json.SyntaxError
	if errors.As(err, &syntaxErr) {
		return &Error{Kind: KindInvalidRequest,
			Message: Echo(fmt.Sprintf("invalid JSON body at byte %d: %s", syntaxErr.Offset, syntaxErr.Error())), Err: err}
	}
	// Our own field decoders' messages (they name the field and never a Go type).
	return &Error{Kind: KindInvalidRequest, Message: Echo("invalid JSON body: " + strings.TrimPrefix(err.Error(), "json: ")), Err: err}
}

// CheckJSONBody applies the OpenAI and Anthropic APIs' rules to a request body
// before it is decoded: a Content-Type other than JSON is refused (415), but
// none at all and curl's default, application/x-www-form-urlencoded, are taken
// as JSON, since what matters is the body; and the body must be UTF-8, as JSON
// requires (those APIs refuse it otherwise; encoding/json would silently
// replace bad bytes with U+FFFD).
func CheckJSONBody(r *http.Request, body []byte) *Error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || !jsonMediaType(mt) {
			return &Error{Kind: KindInvalidRequest, Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type",
				Message: Echo(fmt.Sprintf("Content-Type %q is not supported; send the body as application/json", ct))}
		}
	}
	if !utf8.Valid(body) {
		return &Error{Kind: KindInvalidRequest, Message: "request body is not valid UTF-8"}
	}
	return nil
}

func jsonMediaType(mt string) bool {
	return mt == "application/json" || mt == "application/x-www-form-urlencoded" || strings.HasSuffix(mt, "+json")
}
