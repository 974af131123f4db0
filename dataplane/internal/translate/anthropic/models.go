package anthropic

import (
	"strconv"
	"time"
)

// Model is one model of GET /v1/models.
type Model struct {
	ID          string
	DisplayName string
	CreatedAt   time.Time
	// ContextLength is the context window in tokens, written as
	// max_input_tokens and max_tokens (the output limit the gateway allows is
	// whatever fits in it); 0 leaves both out.
	ContextLength int64
}

// The page size bounds of GET /v1/models.
const (
	DefaultPageSize = 20
	MaxPageSize     = 1000
)

// Page returns the page of models (already in list order) that a client asks
// for with limit, after_id and before_id, and whether more follow in that
// direction. An unknown id gives an empty page, as a cursor past the end does.
func Page(models []Model, limit int, afterID, beforeID string) ([]Model, bool) {
	if limit <= 0 {
		limit = DefaultPageSize
	}
	indexOf := func(id string) int {
		for i := range models {
			if models[i].ID == id {
				return i
			}
		}
		return -1
	}
	switch {
	case beforeID != "":
		end := indexOf(beforeID)
		if end < 0 {
			return nil, false
		}
		start := max(0, end-limit)
		return models[start:end], start > 0
	case afterID != "":
		i := indexOf(afterID)
		if i < 0 {
			return nil, false
		}
		models = models[i+1:]
	}
	if len(models) > limit {
		return models[:limit], true
	}
	return models, false
}

// EncodeModel writes one model object: {"type":"model","id","display_name","created_at"}
// and, when the context length is known, max_input_tokens and max_tokens.
func EncodeModel(m Model) []byte {
	return appendModel(nil, m)
}

func appendModel(dst []byte, m Model) []byte {
	dst = append(dst, `{"type":"model","id":`...)
	dst = appendString(dst, m.ID)
	dst = append(dst, `,"display_name":`...)
	dst = appendString(dst, m.DisplayName)
	dst = append(dst, `,"created_at":`...)
	dst = strconv.AppendQuote(dst, m.CreatedAt.UTC().Format(time.RFC3339))
	if m.ContextLength > 0 {
		dst = append(dst, `,"max_input_tokens":`...)
		dst = appendInt(dst, m.ContextLength)
		dst = append(dst, `,"max_tokens":`...)
		dst = appendInt(dst, m.ContextLength)
	}
	return append(dst, '}')
}

// EncodeModelList writes a page of GET /v1/models:
// {"data":[…],"has_more":…,"first_id":…,"last_id":…}, the ids null on an empty page.
func EncodeModelList(page []Model, hasMore bool) []byte {
	dst := append([]byte(nil), `{"data":[`...)
	for i, m := range page {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendModel(dst, m)
	}
	dst = append(dst, `],"has_more":`...)
	dst = strconv.AppendBool(dst, hasMore)
	dst = append(dst, `,"first_id":`...)
	if len(page) == 0 {
		dst = append(dst, `null,"last_id":null}`...)
		return dst
	}
	dst = appendString(dst, page[0].ID)
	dst = append(dst, `,"last_id":`...)
	dst = appendString(dst, page[len(page)-1].ID)
	return append(dst, '}')
}
