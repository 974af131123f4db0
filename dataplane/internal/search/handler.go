package search

import (
	"encoding/json"
	"net/http"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/surface"
)

// Endpoint is the search route's path.
const Endpoint = "/v1/search"

// Handler serves POST /v1/search. writeError writes errors in the OpenAI
// dialect (the OpenAI surface's WriteError), the one place they are mapped.
func (s *Service) Handler(credential func(*http.Request) string, writeError func(http.ResponseWriter, *http.Request, error)) http.Handler {
	missing := &canonical.Error{Kind: canonical.KindAuthentication, Code: "missing_api_key",
		Message: "You didn't provide an API key. Send it as \"Authorization: Bearer <key>\" or in the X-API-Key header."}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, body, err := surface.Read(r, credential, missing)
		if err != nil {
			writeError(w, r, err)
			return
		}
		req, err := ParseRequest(body, s.cfg.DefaultResults)
		if err != nil {
			writeError(w, r, err)
			return
		}
		call := surface.CallAs(r, key, Endpoint, "search")
		res, err := s.Search(r.Context(), call, req)
		if err != nil {
			writeError(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		enc := json.NewEncoder(w)
		_ = enc.Encode(res)
	})
}
