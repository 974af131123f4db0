package relay

import (
	"context"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/engine"
	"github.com/mindrouter/mindrouter/dataplane/internal/structured"
)

// job is one client request as the relay runs it, whatever the operation.
type job struct {
	call   Call
	op     Operation
	model  string
	prompt int64
	needs  []Capability
	maxOut int64
	stream bool
	// sink receives a streamed chat answer; nil otherwise.
	sink Sink
	// check validates a non-streamed chat answer; nil when no format was asked.
	check *structured.Check
	// pool runs a non-chat operation on one backend, fills res and returns
	// the engine's usage (nil when it reported none); nil for chat.
	pool func(ctx context.Context, eng engine.Engine, t engine.Target, res *Result) (*canonical.Usage, error)
}

func (j *job) admitRequest(attempt int, excluded []int64) AdmitRequest {
	return AdmitRequest{
		RequestID:            j.call.RequestID,
		Credential:           j.call.Credential,
		Model:                j.model,
		Operation:            j.op,
		Needs:                j.needs,
		PromptTokensEstimate: j.prompt,
		MaxOutputTokens:      j.maxOut,
		Attempt:              int32(attempt),
		ExcludedBackendIDs:   excluded,
		Endpoint:             j.call.Endpoint,
		Stream:               j.stream,
	}
}

// setPoolUsage puts the usage charged into a non-chat answer.
func (res *Result) setPoolUsage(u canonical.Usage) {
	switch {
	case res.Embedding != nil:
		res.Embedding.Usage = &u
	case res.Rerank != nil:
		res.Rerank.Usage = &u
	case res.Score != nil:
		res.Score.Usage = &u
	case res.Speech != nil:
		res.Speech.Usage = &u
	case res.Transcription != nil:
		res.Transcription.Usage = &u
	}
}
