// Package ollama is the Ollama-compatible HTTP surface (Ollama 0.17's native
// API), so that Ollama clients reach every engine through the gateway with
// keys, quotas and audit:
//
//   - POST /api/chat and POST /api/generate, streamed as NDJSON (the default,
//     as in Ollama) or whole, each in its own shape (message vs response);
//   - POST /api/embed and POST /api/embeddings in Ollama's shapes;
//   - POST /api/show, GET /api/tags and GET /api/ps from the catalog the
//     caller's key may use;
//   - GET /api/version and GET or HEAD / (no key needed), which Ollama
//     clients use as probes.
//
// It checks that a key is present (Authorization: Bearer, or X-API-Key),
// decodes with translate/ollama, hands the canonical request to the relay and
// writes answers, streams and every error in Ollama's shapes ({"error": "…"},
// also as the last line of a failed stream). All mapping of errors to
// statuses is in errors.go.
//
// The package must not call engines or the control plane's admission
// directly: the relay does. It must not serve /api/admin/, which belongs to
// the admin gateway.
package ollama
