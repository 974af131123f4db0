package engine

import (
	"context"
	"net/http"
)

// PostDecode sends body (of contentType) to url and decodes the whole 2xx
// answer (at most MaxResponseBody bytes) with decode, with Post's error
// contract. An answer decode refuses is a malformed answer: retryable, since
// another backend may answer properly.
func PostDecode[T any](ctx context.Context, c *http.Client, url, contentType string, body []byte,
	errMessage func([]byte) string, decode func([]byte) (T, error)) (T, error) {
	var zero T
	resp, err := PostAs(ctx, c, url, contentType, body, errMessage)
	if err != nil {
		return zero, err
	}
	b, err := ReadBody(ctx, resp)
	if err != nil {
		return zero, err
	}
	out, err := decode(b)
	if err != nil {
		return zero, &Error{Retryable: true, Message: "malformed answer", Err: err}
	}
	return out, nil
}
