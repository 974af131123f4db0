package requestid

import (
	"context"
	"crypto/rand"
)

// Header is the request and response header that carries the id.
const Header = "X-Request-ID"

// maxLen bounds a client-supplied id.
const maxLen = 128

// New mints an id: 26 random base32 characters.
func New() string { return rand.Text() }

// Valid reports whether a client-supplied id may be kept: 1 to 128 printable
// ASCII characters without spaces.
func Valid(id string) bool {
	if id == "" || len(id) > maxLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}

type ctxKey struct{}

type ids struct{ echo, unique string }

// NewContext returns ctx carrying the request's ids: echo is the X-Request-ID
// answered to the client (its own when it sent a sane one), unique is an id
// the gateway minted and no client chose, for the control plane, whose usage
// records are idempotent by request id — a client-chosen id there would let a
// client reuse one to have its usage deduplicated away. When the gateway
// minted echo itself, pass it as both.
func NewContext(ctx context.Context, echo, unique string) context.Context {
	return context.WithValue(ctx, ctxKey{}, ids{echo: echo, unique: unique})
}

// FromContext returns the X-Request-ID of the request, or "".
func FromContext(ctx context.Context) string {
	v, _ := ctx.Value(ctxKey{}).(ids)
	return v.echo
}

// Unique returns the gateway-minted id of the request, or "".
func Unique(ctx context.Context) string {
	v, _ := ctx.Value(ctxKey{}).(ids)
	return v.unique
}
