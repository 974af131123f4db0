package anthropic

import (
	"cmp"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/anthropic"
)

// models answers GET /anthropic/v1/models in Anthropic's shape, newest first
// (then by id), paged with limit (1–1000, default 20), after_id and before_id.
func (s *Surface) models(w http.ResponseWriter, r *http.Request) {
	catalog, ok := s.catalogFor(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	limit := anthropic.DefaultPageSize
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > anthropic.MaxPageSize {
			s.WriteError(w, r, canonical.Invalid("limit", "limit: must be an integer between 1 and 1000"))
			return
		}
		limit = n
	}
	models := make([]anthropic.Model, 0, len(catalog))
	for i := range catalog {
		models = append(models, model(&catalog[i]))
	}
	slices.SortFunc(models, func(a, b anthropic.Model) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	page, more := anthropic.Page(models, limit, q.Get("after_id"), q.Get("before_id"))
	s.writeJSON(w, r, anthropic.EncodeModelList(page, more))
}

// model answers GET /anthropic/v1/models/{model}.
func (s *Surface) model(w http.ResponseWriter, r *http.Request) {
	catalog, ok := s.catalogFor(w, r)
	if !ok {
		return
	}
	name := r.PathValue("model")
	m := find(catalog, name)
	if m == nil {
		s.WriteError(w, r, modelNotFound(name))
		return
	}
	s.writeJSON(w, r, anthropic.EncodeModel(model(m)))
}

func (s *Surface) catalogFor(w http.ResponseWriter, r *http.Request) ([]relay.ModelInfo, bool) {
	credential := Credential(r)
	if credential == "" {
		s.WriteError(w, r, errMissingKey)
		return nil, false
	}
	catalog, err := s.catalog.ListModels(r.Context(), credential)
	if err != nil {
		s.WriteError(w, r, err)
		return nil, false
	}
	return catalog, true
}

func model(m *relay.ModelInfo) anthropic.Model {
	display := m.DisplayName
	if display == "" {
		display = m.Name
	}
	return anthropic.Model{ID: m.Name, DisplayName: display, CreatedAt: time.Unix(m.Created, 0), ContextLength: m.ContextLength}
}
