package openai

import (
	"net/http"
	"time"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
)

// ErrorObject is the inside of the OpenAI error envelope {"error": {...}} as this
// gateway writes it; Param and Code are written as null when empty.
type ErrorObject struct {
	Message string
	Type    string
	Param   string
	Code    string
}

// ErrorResponse is an error ready to write: status, Retry-After (0 = none) and body.
type ErrorResponse struct {
	Status     int
	RetryAfter time.Duration
	Body       []byte
}

// defaultRetryAfter is what 429 and 503 answers advertise when the control plane
// gave no delay: clients must always be told when to come back.
const defaultRetryAfter = time.Second

// kindMapping is the one table from error kinds to OpenAI statuses, types and
// default codes.
var kindMapping = map[canonical.ErrorKind]struct {
	status    int
	typ, code string
}{
	canonical.KindInvalidRequest: {http.StatusBadRequest, "invalid_request_error", ""},
	canonical.KindAuthentication: {http.StatusUnauthorized, "authentication_error", "invalid_api_key"},
	canonical.KindPermission:     {http.StatusForbidden, "permission_error", "permission_denied"},
	canonical.KindNotFound:       {http.StatusNotFound, "invalid_request_error", "model_not_found"},
	canonical.KindTooLarge:       {http.StatusRequestEntityTooLarge, "invalid_request_error", "request_too_large"},
	canonical.KindUnprocessable:  {http.StatusUnprocessableEntity, "invalid_request_error", ""},
	canonical.KindRateLimited:    {http.StatusTooManyRequests, "requests", "rate_limit_exceeded"},
	canonical.KindQuotaExhausted: {http.StatusTooManyRequests, "insufficient_quota", "insufficient_quota"},
	canonical.KindUnavailable:    {http.StatusServiceUnavailable, "server_error", "service_unavailable"},
	canonical.KindBackend:        {http.StatusBadGateway, "server_error", "backend_error"},
	canonical.KindCancelled:      {499, "request_cancelled", ""},
	canonical.KindInternal:       {http.StatusInternalServerError, "server_error", ""},
}

// errorObject maps an error to its status and envelope contents. A non-zero
// err.Status (a backend's 4xx passed through) overrides the kind's status, and
// the type follows the status.
func errorObject(err *canonical.Error) (int, ErrorObject) {
	m, ok := kindMapping[err.Kind]
	if !ok {
		m = kindMapping[canonical.KindInternal]
	}
	status, typ, code := m.status, m.typ, m.code
	if err.Status != 0 && err.Status != status {
		status = err.Status
		typ = typeForStatus(status)
		code = ""
	}
	if err.Code != "" {
		code = err.Code
	}
	if err.Code == canonical.CodeInvalidOutput {
		// The model's answer, not the request, was at fault.
		typ = "invalid_response_error"
	}
	msg := err.Message
	if msg == "" {
		msg = http.StatusText(status)
	}
	return status, ErrorObject{Message: msg, Type: typ, Param: err.Param, Code: code}
}

func typeForStatus(status int) string {
	switch {
	case status == http.StatusUnauthorized:
		return "authentication_error"
	case status == http.StatusForbidden:
		return "permission_error"
	case status == http.StatusTooManyRequests:
		return "requests"
	case status >= 500:
		return "server_error"
	}
	return "invalid_request_error"
}

// EncodeError writes the OpenAI error envelope for err with its status and
// Retry-After. 429 and 503 always carry a Retry-After.
func EncodeError(err *canonical.Error) ErrorResponse {
	status, obj := errorObject(err)
	body := []byte(`{"error":`)
	body = appendErrorObject(body, obj)
	body = append(body, '}')
	wait := err.Wait
	if wait <= 0 && (status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable) {
		wait = defaultRetryAfter
	}
	return ErrorResponse{Status: status, RetryAfter: wait, Body: body}
}

func appendErrorObject(dst []byte, o ErrorObject) []byte {
	dst = append(dst, `{"message":`...)
	dst = appendString(dst, o.Message)
	dst = append(dst, `,"type":`...)
	dst = appendString(dst, o.Type)
	dst = append(dst, `,"param":`...)
	dst = appendNullable(dst, o.Param)
	dst = append(dst, `,"code":`...)
	dst = appendNullable(dst, o.Code)
	return append(dst, '}')
}

func appendNullable(dst []byte, s string) []byte {
	if s == "" {
		return append(dst, "null"...)
	}
	return appendString(dst, s)
}
