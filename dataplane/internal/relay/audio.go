package relay

import (
	"context"
	"math"
	"unicode/utf8"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/engine"
	"github.com/mindrouter/mindrouter/dataplane/internal/tokens"
	"github.com/mindrouter/mindrouter/dataplane/internal/wav"
)

// The rule audio requests are charged by, in tokens so that quotas, fair
// share and usage reports treat them like text (docs/api.md, "Voice").
const (
	// SpeechCharsPerToken: a speech request is charged its input's
	// characters divided by this, rounded up, as prompt tokens.
	SpeechCharsPerToken = 4
	// TranscriptionTokensPerSecond: a transcription is charged each started
	// second of audio as this many prompt tokens (Whisper's encoder turns 30 s
	// into 1500 positions), and its transcript's characters / 4 as completion
	// tokens.
	TranscriptionTokensPerSecond = 50
	// assumedAudioBytesPerSecond sizes a recording whose duration is not known
	// (neither the engine nor a WAV header said): 128 kbit/s, a common
	// compressed rate. The usage is then marked estimated.
	assumedAudioBytesPerSecond = 16000
)

// SpeechUsage is what a speech request of input is charged.
func SpeechUsage(input string) canonical.Usage {
	n := utf8.RuneCountInString(input)
	return canonical.Usage{Prompt: int64((n + SpeechCharsPerToken - 1) / SpeechCharsPerToken)}
}

// TranscriptionUsage is what a transcription of seconds of audio into text
// is charged.
func TranscriptionUsage(seconds float64, text string) canonical.Usage {
	return canonical.Usage{Prompt: int64(math.Ceil(max(seconds, 0))) * TranscriptionTokensPerSecond,
		Completion: tokens.FromChars(utf8.RuneCountInString(text))}
}

// audioSeconds is the duration of an upload by its WAV header, or by its
// size at assumedAudioBytesPerSecond (known false).
func audioSeconds(b []byte) (seconds float64, known bool) {
	if info, err := wav.Parse(b); err == nil {
		return info.Seconds, true
	}
	return float64(len(b)) / assumedAudioBytesPerSecond, false
}

// Speak runs a text-to-speech request (OpenAI /v1/audio/speech): admission
// with OperationSpeech (only TTS backends serve it), dispatch to the lease's
// engine, retry on another backend after a backend failure, and one release
// charged by SpeechUsage. On success res.Speech holds the audio.
func (r *Relay) Speak(ctx context.Context, call Call, req *canonical.SpeechRequest) (*Result, error) {
	usage := SpeechUsage(req.Input)
	j := &job{call: call, op: OperationSpeech, model: req.Model, prompt: usage.Prompt,
		needs: []Capability{CapabilitySpeech},
		pool: func(ctx context.Context, eng engine.Engine, t engine.Target, res *Result) (*canonical.Usage, error) {
			sp, ok := eng.(engine.Speaker)
			if !ok {
				return nil, unsupported("this backend cannot synthesise speech")
			}
			out, err := sp.Speak(ctx, t, req)
			if err != nil {
				return nil, err
			}
			u := usage
			out.Usage, res.Speech = &u, out
			return &u, nil
		}}
	return r.run(ctx, j)
}

// Transcribe runs a speech-to-text request (OpenAI
// /v1/audio/transcriptions): admission with OperationTranscription (only STT
// backends serve it) and one release charged by TranscriptionUsage for the
// audio's duration as the engine reported it, else as its WAV header says,
// else estimated from its size. On success res.Transcription holds the
// transcript with its Duration set.
func (r *Relay) Transcribe(ctx context.Context, call Call, req *canonical.TranscriptionRequest) (*Result, error) {
	seconds, known := audioSeconds(req.Audio)
	j := &job{call: call, op: OperationTranscription, model: req.Model,
		prompt: TranscriptionUsage(seconds, "").Prompt,
		needs:  []Capability{CapabilityTranscription},
		pool: func(ctx context.Context, eng engine.Engine, t engine.Target, res *Result) (*canonical.Usage, error) {
			tr, ok := eng.(engine.Transcriber)
			if !ok {
				return nil, unsupported("this backend cannot transcribe speech")
			}
			out, err := tr.Transcribe(ctx, t, req)
			if err != nil {
				return nil, err
			}
			estimated := false
			if out.Duration <= 0 {
				out.Duration, estimated = seconds, !known
			}
			if out.Language == "" {
				out.Language = req.Language
			}
			u := TranscriptionUsage(out.Duration, out.Text)
			u.Estimated = estimated
			out.Usage, res.Transcription = &u, out
			return &u, nil
		}}
	return r.run(ctx, j)
}
