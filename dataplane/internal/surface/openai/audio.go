package openai

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
	"github.com/mindrouter/mindrouter/dataplane/internal/surface"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/openai"
)

// Audit surfaces of the voice routes.
const (
	speechSurface        = "openai-audio-speech"
	transcriptionSurface = "openai-audio-transcription"
)

// AudioRelay runs voice requests (relay.Relay).
type AudioRelay interface {
	Speak(ctx context.Context, call relay.Call, req *canonical.SpeechRequest) (*relay.Result, error)
	Transcribe(ctx context.Context, call relay.Call, req *canonical.TranscriptionRequest) (*relay.Result, error)
}

// registerAudio adds the voice routes to mux, POST /v1/audio/speech and POST
// /v1/audio/transcriptions, when the surface's relay runs voice requests
// (relay.Relay does).
func (s *Surface) registerAudio(mux *http.ServeMux) {
	r, ok := s.relay.(AudioRelay)
	if !ok {
		return
	}
	mux.HandleFunc("POST /v1/audio/speech", func(w http.ResponseWriter, req *http.Request) { s.speech(w, req, r) })
	mux.HandleFunc("POST /v1/audio/transcriptions", func(w http.ResponseWriter, req *http.Request) { s.transcription(w, req, r) })
}

// speech serves POST /v1/audio/speech: the engine's audio, as it sent it.
func (s *Surface) speech(w http.ResponseWriter, r *http.Request, ar AudioRelay) {
	credential, body, ok := s.read(w, r)
	if !ok {
		return
	}
	req, err := openai.DecodeSpeechRequest(body)
	if err != nil {
		s.WriteError(w, r, err)
		return
	}
	call := surface.CallAs(r, credential, "/v1/audio/speech", speechSurface)
	// The audit record keeps the text spoken (the audio itself is not stored).
	meta, _ := json.Marshal(map[string]any{"model": req.Model, "voice": req.Voice, "response_format": req.Format,
		"speed": req.Speed, "instructions": req.Instructions, "input_characters": len([]rune(req.Input))})
	call.Audit.Exchange(req.Model, string(meta), req.Input, "")
	res, err := ar.Speak(r.Context(), call, req)
	if err != nil {
		s.WriteError(w, r, err)
		return
	}
	writeBody(w, res.Admission, res.Speech.ContentType, res.Speech.Audio)
}

// transcription serves POST /v1/audio/transcriptions (multipart upload).
func (s *Surface) transcription(w http.ResponseWriter, r *http.Request, ar AudioRelay) {
	credential := Credential(r)
	if credential == "" {
		s.WriteError(w, r, errMissingKey)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, openai.MaxTranscriptionBody))
	if err != nil {
		s.WriteError(w, r, canonical.BodyError(err))
		return
	}
	req, err := openai.ParseTranscription(r.Header.Get("Content-Type"), body)
	if err != nil {
		s.WriteError(w, r, err)
		return
	}
	call := surface.CallAs(r, credential, "/v1/audio/transcriptions", transcriptionSurface)
	// The audit record keeps the upload's description, the prompt and the
	// transcript (the audio itself is not stored).
	meta, _ := json.Marshal(map[string]any{"model": req.Model, "filename": req.Filename, "content_type": req.ContentType,
		"audio_bytes": len(req.Audio), "language": req.Language, "response_format": req.Format})
	call.Audit.Exchange(req.Model, string(meta), req.Prompt, "")
	res, err := ar.Transcribe(r.Context(), call, req)
	if err != nil {
		s.WriteError(w, r, err)
		return
	}
	if res.Transcription != nil {
		call.Audit.Exchange(req.Model, string(meta), req.Prompt, res.Transcription.Text)
	}
	b, ct, err := openai.EncodeTranscription(res.Transcription, req)
	if err != nil {
		s.WriteError(w, r, err)
		return
	}
	writeBody(w, res.Admission, ct, b)
}

// writeBody writes a successful answer of any type with the admission headers.
func writeBody(w http.ResponseWriter, a relay.Admission, contentType string, b []byte) {
	h := w.Header()
	surface.AdmissionHeaders(h, a)
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}
