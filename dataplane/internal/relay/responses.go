package relay

import (
	"encoding/json"
	"time"
)

// StoredResponse is a response of the OpenAI Responses API as the control
// plane keeps it for its user (store=true): the documents are the surface's
// own JSON, opaque to the control plane.
type StoredResponse struct {
	// ID is resp_<32 hex>.
	ID                 string
	PreviousResponseID string
	Model              string
	// Response is the response object as the client saw it.
	Response json.RawMessage
	// InputItems are the response's own input items, each with an id.
	InputItems []json.RawMessage
	// History are the items the model saw before InputItems (earlier turns'
	// inputs and outputs), so that a continuation needs one lookup.
	History   []json.RawMessage
	CreatedAt time.Time
}
