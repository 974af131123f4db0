package anthropic

import (
	"net/http"
	"time"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
)

// StatusOverloaded is Anthropic's 529: the service is temporarily out of
// capacity. The gateway answers it when no backend can take the request (full
// or timed-out queue, no healthy backend, control plane unreachable).
const StatusOverloaded = 529

// The Anthropic error types.
const (
	TypeInvalidRequest = "invalid_request_error"
	TypeAuthentication = "authentication_error"
	TypePermission     = "permission_error"
	TypeNotFound       = "not_found_error"
	TypeTooLarge       = "request_too_large"
	TypeRateLimit      = "rate_limit_error"
	TypeAPI            = "api_error"
	TypeTimeout        = "timeout_error"
	TypeOverloaded     = "overloaded_error"
)

// ErrorResponse is an error ready to write: status, Retry-After (0 = none) and body.
type ErrorResponse struct {
	Status     int
	RetryAfter time.Duration
	Body       []byte
}

// defaultRetryAfter is what 429, 503 and 529 answers advertise when the
// control plane gave no delay.
const defaultRetryAfter = time.Second

// kindStatus is the one table from error kinds to statuses; the type follows
// the status (typeForStatus).
var kindStatus = map[canonical.ErrorKind]int{
	canonical.KindInvalidRequest: http.StatusBadRequest,
	canonical.KindAuthentication: http.StatusUnauthorized,
	canonical.KindPermission:     http.StatusForbidden,
	canonical.KindNotFound:       http.StatusNotFound,
	canonical.KindTooLarge:       http.StatusRequestEntityTooLarge,
	canonical.KindUnprocessable:  http.StatusUnprocessableEntity,
	canonical.KindRateLimited:    http.StatusTooManyRequests,
	canonical.KindQuotaExhausted: http.StatusTooManyRequests,
	canonical.KindUnavailable:    StatusOverloaded,
	canonical.KindBackend:        http.StatusBadGateway,
	canonical.KindCancelled:      499,
	canonical.KindInternal:       http.StatusInternalServerError,
}

// ErrorStatus returns the status and Anthropic error type of err. A non-zero
// err.Status (a backend's 4xx passed through) overrides the kind's status; a
// timeout is 504 timeout_error.
func ErrorStatus(err *canonical.Error) (status int, typ string) {
	status, ok := kindStatus[err.Kind]
	if !ok {
		status = http.StatusInternalServerError
	}
	if err.Kind == canonical.KindUnavailable && err.Code == "timeout" {
		status = http.StatusGatewayTimeout
	}
	if err.Status != 0 {
		status = err.Status
	}
	return status, typeForStatus(status)
}

func typeForStatus(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return TypeAuthentication
	case http.StatusForbidden:
		return TypePermission
	case http.StatusNotFound:
		return TypeNotFound
	case http.StatusRequestEntityTooLarge:
		return TypeTooLarge
	case http.StatusTooManyRequests:
		return TypeRateLimit
	case http.StatusGatewayTimeout:
		return TypeTimeout
	case StatusOverloaded, http.StatusServiceUnavailable:
		return TypeOverloaded
	}
	if status >= 500 {
		return TypeAPI
	}
	return TypeInvalidRequest
}

// EncodeError writes Anthropic's envelope,
// {"type":"error","error":{"type":…,"message":…},"request_id":…}, with its
// status and Retry-After (always set on 429, 503 and 529). requestID is left
// out when empty.
func EncodeError(err *canonical.Error, requestID string) ErrorResponse {
	status, typ := ErrorStatus(err)
	wait := err.Wait
	if wait <= 0 && (status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable || status == StatusOverloaded) {
		wait = defaultRetryAfter
	}
	return ErrorResponse{Status: status, RetryAfter: wait, Body: appendError(nil, typ, message(err, status), requestID)}
}

// AppendStreamError appends the event that ends a failed stream:
// "event: error" with the same envelope. No message_stop follows.
func AppendStreamError(dst []byte, err *canonical.Error, requestID string) []byte {
	status, typ := ErrorStatus(err)
	dst = append(dst, "event: error\ndata: "...)
	dst = appendError(dst, typ, message(err, status), requestID)
	return append(dst, "\n\n"...)
}

func message(err *canonical.Error, status int) string {
	if err.Message != "" {
		return err.Message
	}
	if t := http.StatusText(status); t != "" {
		return t
	}
	return "Overloaded"
}

func appendError(dst []byte, typ, msg, requestID string) []byte {
	dst = append(dst, `{"type":"error","error":{"type":`...)
	dst = appendString(dst, typ)
	dst = append(dst, `,"message":`...)
	dst = appendString(dst, msg)
	dst = append(dst, '}')
	if requestID != "" {
		dst = append(dst, `,"request_id":`...)
		dst = appendString(dst, requestID)
	}
	return append(dst, '}')
}
