// Package requestid names every client request: it keeps a client's
// X-Request-ID when it is sane (for the echo and the logs), mints one
// otherwise, always mints a unique id no client chose (for the control plane),
// and carries both in the request's context. It must not log or store anything.
package requestid
