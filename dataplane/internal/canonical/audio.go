package canonical

// SpeechRequest asks a text-to-speech model to say Input (OpenAI's
// /v1/audio/speech).
type SpeechRequest struct {
	// Model is the model name the client asked for.
	Model string
	// Input is the text to say; never empty.
	Input string
	// Voice names the voice; engines define the names.
	Voice string
	// Format is the audio encoding: mp3, opus, aac, flac, wav or pcm.
	Format string
	// Speed is the speaking rate, 0.25 to 4; 0 leaves the engine's default (1).
	Speed float64
	// Instructions steer the voice (OpenAI's gpt-4o-mini-tts); "" when none.
	Instructions string
}

// SpeechResponse is the audio a speech request produced.
type SpeechResponse struct {
	// Audio is the encoded audio, as the engine sent it.
	Audio []byte
	// ContentType is the engine's media type for Audio.
	ContentType string
	// Usage is what the request is charged (Prompt: the characters of the
	// input converted to tokens); set by the relay.
	Usage *Usage
}

// TranscriptionRequest asks a speech-to-text model for the text of an audio
// file (OpenAI's /v1/audio/transcriptions).
type TranscriptionRequest struct {
	// Model is the model name the client asked for.
	Model string
	// Audio is the uploaded file's bytes; never empty.
	Audio []byte
	// Filename is the upload's file name (engines guess the codec from its
	// extension); ContentType its declared media type.
	Filename, ContentType string
	// Language is the ISO-639-1 language of the audio; "" lets the engine detect it.
	Language string
	// Prompt guides the transcript's style or continues a previous segment.
	Prompt string
	// Temperature is the sampling temperature; nil leaves the engine's default.
	Temperature *float64
	// Format is what the client wants back: json, text, srt, vtt or verbose_json.
	Format string
	// Words and Segments ask for word and segment timestamps (verbose_json's
	// timestamp_granularities).
	Words, Segments bool
}

// Transcription is the text of an audio file, with its timings.
type Transcription struct {
	// Text is the whole transcript.
	Text string
	// Language is the language the engine detected or was told.
	Language string
	// Duration is the audio's length in seconds.
	Duration float64
	// Segments are the transcript's segments in order; may be empty.
	Segments []TranscriptSegment
	// Words are the words with timings when the engine gave them.
	Words []TranscriptWord
	// Usage is what the request is charged (Prompt: the audio's seconds
	// converted to tokens, Completion: the transcript's tokens); set by the relay.
	Usage *Usage
}

// TranscriptSegment is one stretch of a Transcription.
type TranscriptSegment struct {
	ID         int
	Start, End float64
	Text       string
}

// TranscriptWord is one word of a Transcription.
type TranscriptWord struct {
	Word       string
	Start, End float64
}
