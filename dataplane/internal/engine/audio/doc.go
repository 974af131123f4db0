// Package audio calls OpenAI-compatible speech servers: text-to-speech
// backends (POST /v1/audio/speech, as Speaches, Kokoro-FastAPI and
// vLLM-Omni serve it) and speech-to-text backends (POST
// /v1/audio/transcriptions, as Speaches, faster-whisper servers and vLLM's
// transcription server serve it). It translates canonical audio requests
// to that wire format and back; it does not chat, and it knows nothing of
// client dialects.
package audio
