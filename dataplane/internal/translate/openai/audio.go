package openai

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
)

// Limits of the audio routes.
const (
	// MaxSpeechInput is the longest text /v1/audio/speech accepts, in
	// characters (OpenAI's limit).
	MaxSpeechInput = 4096
	// MaxAudioUpload is the largest file /v1/audio/transcriptions accepts
	// (OpenAI's limit: 25 MB).
	MaxAudioUpload = 25 << 20
	// MaxTranscriptionBody bounds the whole multipart body: the file plus
	// the form fields and part headers.
	MaxTranscriptionBody = MaxAudioUpload + 1<<20
	// maxFormField bounds each text field of the form.
	maxFormField = 64 << 10
	// maxFormParts bounds the number of parts, so that a body of many tiny
	// parts cannot make the parser do unbounded work.
	maxFormParts = 64
)

// SpeechFormats maps each response_format of /v1/audio/speech to its media type.
var SpeechFormats = map[string]string{
	"mp3": "audio/mpeg", "opus": "audio/ogg", "aac": "audio/aac",
	"flac": "audio/flac", "wav": "audio/wav", "pcm": "audio/pcm",
}

// TranscriptionFormats are the response_format values of /v1/audio/transcriptions.
var TranscriptionFormats = []string{"json", "text", "srt", "vtt", "verbose_json"}

// DecodeSpeechRequest parses the JSON body of POST /v1/audio/speech. A
// missing response_format is mp3, as OpenAI's API defaults.
func DecodeSpeechRequest(body []byte) (*canonical.SpeechRequest, error) {
	var w struct {
		Model          string   `json:"model"`
		Input          *string  `json:"input"`
		Voice          string   `json:"voice"`
		ResponseFormat string   `json:"response_format"`
		Speed          *float64 `json:"speed"`
		Instructions   string   `json:"instructions"`
		StreamFormat   string   `json:"stream_format"`
	}
	if err := decodeObject(body, &w); err != nil {
		return nil, err
	}
	if strings.TrimSpace(w.Model) == "" {
		return nil, canonical.Invalid("model", "you must provide a model parameter")
	}
	if w.Input == nil || strings.TrimSpace(*w.Input) == "" {
		return nil, canonical.Invalid("input", "input must be a non-empty string")
	}
	if n := utf8.RuneCountInString(*w.Input); n > MaxSpeechInput {
		return nil, canonical.Invalid("input", fmt.Sprintf("input is %d characters; the most is %d", n, MaxSpeechInput))
	}
	if strings.TrimSpace(w.Voice) == "" {
		return nil, canonical.Invalid("voice", "you must provide a voice parameter")
	}
	req := &canonical.SpeechRequest{Model: w.Model, Input: *w.Input, Voice: w.Voice, Format: w.ResponseFormat, Instructions: w.Instructions}
	if req.Format == "" {
		req.Format = "mp3"
	}
	if _, ok := SpeechFormats[req.Format]; !ok {
		return nil, canonical.Invalid("response_format",
			fmt.Sprintf("response_format must be one of mp3, opus, aac, flac, wav or pcm; got %q", req.Format))
	}
	if w.StreamFormat != "" && w.StreamFormat != "audio" {
		return nil, canonical.Invalid("stream_format", "only stream_format \"audio\" is supported")
	}
	if w.Speed != nil {
		if *w.Speed < 0.25 || *w.Speed > 4 {
			return nil, canonical.Invalid("speed", "speed must be between 0.25 and 4.0")
		}
		req.Speed = *w.Speed
	}
	return req, nil
}

// EncodeUpstreamSpeech writes the body of POST /v1/audio/speech for an
// OpenAI-compatible TTS engine.
func EncodeUpstreamSpeech(req *canonical.SpeechRequest, model string) ([]byte, error) {
	w := struct {
		Model          string  `json:"model"`
		Input          string  `json:"input"`
		Voice          string  `json:"voice"`
		ResponseFormat string  `json:"response_format"`
		Speed          float64 `json:"speed,omitempty"`
		Instructions   string  `json:"instructions,omitempty"`
	}{model, req.Input, req.Voice, req.Format, req.Speed, req.Instructions}
	return marshal(&w)
}

// ParseTranscription parses the multipart/form-data body of POST
// /v1/audio/transcriptions (contentType is the request's Content-Type). The
// body must already be bounded (MaxTranscriptionBody); the file may be at
// most MaxAudioUpload bytes, each other field maxFormField bytes.
func ParseTranscription(contentType string, body []byte) (*canonical.TranscriptionRequest, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return nil, &canonical.Error{Kind: canonical.KindInvalidRequest, Status: http.StatusUnsupportedMediaType,
			Code: "unsupported_media_type", Message: "the request body must be multipart/form-data with a boundary"}
	}
	req := &canonical.TranscriptionRequest{}
	var gotFile bool
	var granularities []string
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	for n := 0; ; n++ {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, canonical.Invalid("", "malformed multipart body: "+err.Error())
		}
		if n >= maxFormParts {
			return nil, canonical.Invalid("", fmt.Sprintf("the form has more than %d parts", maxFormParts))
		}
		name := p.FormName()
		if name == "file" {
			if gotFile {
				return nil, canonical.Invalid("file", "give exactly one file")
			}
			gotFile = true
			b, err := readPart(p, MaxAudioUpload, "file")
			if err != nil {
				return nil, err
			}
			req.Audio, req.Filename, req.ContentType = b, p.FileName(), p.Header.Get("Content-Type")
			continue
		}
		b, err := readPart(p, maxFormField, name)
		if err != nil {
			return nil, err
		}
		v := string(b)
		if !utf8.ValidString(v) {
			return nil, canonical.Invalid(name, "form field "+strconv.Quote(name)+" is not valid UTF-8")
		}
		if err := setTranscriptionField(req, name, v, &granularities); err != nil {
			return nil, err
		}
	}
	return req, finishTranscription(req, gotFile, granularities)
}

func readPart(p *multipart.Part, limit int64, name string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(p, limit+1))
	if err != nil {
		return nil, canonical.Invalid(name, "malformed multipart body: "+err.Error())
	}
	if int64(len(b)) > limit {
		return nil, &canonical.Error{Kind: canonical.KindTooLarge, Param: name,
			Message: fmt.Sprintf("%s is larger than %d bytes", name, limit)}
	}
	return b, nil
}

func setTranscriptionField(req *canonical.TranscriptionRequest, name, v string, granularities *[]string) error {
	switch name {
	case "model":
		req.Model = v
	case "language":
		req.Language = v
	case "prompt":
		req.Prompt = v
	case "response_format":
		req.Format = v
	case "temperature":
		t, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || t < 0 || t > 1 {
			return canonical.Invalid("temperature", "temperature must be a number between 0 and 1")
		}
		req.Temperature = &t
	case "timestamp_granularities[]", "timestamp_granularities":
		*granularities = append(*granularities, v)
	case "stream":
		if b, err := strconv.ParseBool(v); err == nil && b {
			return canonical.Invalid("stream", "streamed transcriptions are not supported")
		}
	}
	// Other fields (chunking_strategy, include[], …) are ignored, as engines
	// that do not know them do.
	return nil
}

func finishTranscription(req *canonical.TranscriptionRequest, gotFile bool, granularities []string) error {
	if strings.TrimSpace(req.Model) == "" {
		return canonical.Invalid("model", "you must provide a model parameter")
	}
	if !gotFile || len(req.Audio) == 0 {
		return canonical.Invalid("file", "you must upload a non-empty audio file in the \"file\" field")
	}
	if req.Format == "" {
		req.Format = "json"
	}
	if !validFormat(req.Format) {
		return canonical.Invalid("response_format",
			fmt.Sprintf("response_format must be one of json, text, srt, vtt or verbose_json; got %q", req.Format))
	}
	if req.Language != "" && (len(req.Language) > 8 || strings.ContainsAny(req.Language, " \t\r\n")) {
		return canonical.Invalid("language", "language must be an ISO-639-1 code such as \"en\"")
	}
	for _, g := range granularities {
		switch g {
		case "word":
			req.Words = true
		case "segment":
			req.Segments = true
		default:
			return canonical.Invalid("timestamp_granularities", fmt.Sprintf("timestamp_granularities must be \"word\" or \"segment\"; got %q", g))
		}
	}
	if len(granularities) > 0 && req.Format != "verbose_json" {
		return canonical.Invalid("timestamp_granularities", "timestamp_granularities needs response_format \"verbose_json\"")
	}
	return nil
}

func validFormat(f string) bool {
	for _, v := range TranscriptionFormats {
		if v == f {
			return true
		}
	}
	return false
}
