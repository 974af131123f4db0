package ollama

import (
	"encoding/json"
	"net/http"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
)

// statuses maps error kinds to HTTP statuses for Ollama clients.
var statuses = map[canonical.ErrorKind]int{
	canonical.KindInvalidRequest: http.StatusBadRequest,
	canonical.KindAuthentication: http.StatusUnauthorized,
	canonical.KindPermission:     http.StatusForbidden,
	canonical.KindNotFound:       http.StatusNotFound,
	canonical.KindTooLarge:       http.StatusRequestEntityTooLarge,
	canonical.KindUnprocessable:  http.StatusUnprocessableEntity,
	canonical.KindRateLimited:    http.StatusTooManyRequests,
	canonical.KindQuotaExhausted: http.StatusTooManyRequests,
	canonical.KindUnavailable:    http.StatusServiceUnavailable,
	canonical.KindBackend:        http.StatusBadGateway,
	canonical.KindCancelled:      499,
	canonical.KindInternal:       http.StatusInternalServerError,
}

// EncodeError writes Ollama's error body {"error": "…"} with its status.
func EncodeError(err *canonical.Error) (int, []byte) {
	status, ok := statuses[err.Kind]
	if !ok {
		status = http.StatusInternalServerError
	}
	if err.Status != 0 {
		status = err.Status
	}
	b, _ := json.Marshal(ErrorResponse{Error: err.Message})
	return status, b
}

// AppendStreamError appends the {"error": "…"} line that ends a failed stream.
func AppendStreamError(dst []byte, err *canonical.Error) []byte {
	_, b := EncodeError(err)
	dst = append(dst, b...)
	return append(dst, '\n')
}

// ModelNotFound is Ollama's message for a model it does not have.
func ModelNotFound(model string) string { return "model '" + canonical.Echo(model) + "' not found" }
