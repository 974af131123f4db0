// Package surface holds what the client surfaces (surface/openai,
// surface/ollama, surface/anthropic) do the same way: reading a request's
// credential and body, the request id usage is keyed by, the relay call a
// request makes (Call, whose successful releases wait for the reply when the
// middleware prepared the request with Track), and the MindRouter
// headers of an admitted request. Each dialect's own envelope, routes and translation stay in its
// package; this one must not know any dialect.
package surface
