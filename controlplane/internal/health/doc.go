// Package health probes inference backends: it asks an Ollama or vLLM server
// whether it is up, which version it runs, whether it is the project's engine
// simulator, and which models it serves with their context windows and
// capabilities.
//
// A probe is a handful of bounded HTTP calls with a timeout; its errors are
// short and never contain the backend URL (which may carry credentials). The
// package keeps no state about backends beyond a cache of Ollama /api/show
// answers keyed by (URL, model, digest), so that a poll every 30 seconds does
// not re-describe unchanged models. It must not decide what a probe means for
// routing or write to the database: the registry package owns both.
package health
