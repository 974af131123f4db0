package health

import (
	"context"
)

// The capabilities the models of speech backends are given: a speech server
// lists its models at GET /v1/models like vLLM, with nothing saying what they
// do, so the engine kind the admin registered says it.
const (
	SpeechCapability        = "speech"
	TranscriptionCapability = "transcription"
)

// probeAudio checks an OpenAI-compatible speech server (Speaches,
// Kokoro-FastAPI, vLLM's transcription server) as vLLM is checked — GET
// /health, GET /v1/models, GET /version when it has one — and gives every
// model the capability of the engine kind: speech for tts, transcription for
// stt (and no other, so that no chat is ever routed to it).
func (p *Prober) probeAudio(ctx context.Context, base, engine string) Result {
	res := p.probeVLLM(ctx, base)
	capability := SpeechCapability
	if engine == EngineSTT {
		capability = TranscriptionCapability
	}
	for i := range res.Models {
		res.Models[i].Capabilities = []string{capability}
	}
	return res
}
