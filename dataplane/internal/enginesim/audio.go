package enginesim

import (
	"fmt"
	"io"
	"math"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mindrouter/mindrouter/dataplane/internal/wav"
)

// AudioVersion is what the simulated speech servers report at /version.
const AudioVersion = "0.8.0-sim"

// SimTranscriptWords are the words of every simulated transcript: the
// simulator does not recognise speech; it says how long the audio was by
// reading TranscriptWordsPerSecond of these words a second (at least one),
// cycling, so the transcript of a given duration is always the same.
var SimTranscriptWords = strings.Fields("the quick brown fox jumps over the lazy dog")

// TranscriptWordsPerSecond is the speaking rate of simulated transcripts.
const TranscriptWordsPerSecond = 2.5

// speechFormats are the formats the simulator encodes honestly; the others
// OpenAI defines (mp3, opus, aac, flac) need codecs it does not have.
var speechFormats = map[string]string{"wav": "audio/wav", "pcm": "audio/pcm"}

// routesAudio serves the OpenAI audio API as Speaches and Kokoro-FastAPI do:
// a TTS engine speaks, an STT engine transcribes.
func (s *Server) routesAudio(mux *http.ServeMux) {
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.HandleFunc("GET /version", func(w http.ResponseWriter, _ *http.Request) {
		vllmJSON(w, http.StatusOK, obj{{"version", AudioVersion}})
	})
	mux.HandleFunc("GET /v1/models", s.audioModels)
	if s.cfg.Engine == EngineTTS {
		mux.HandleFunc("POST /v1/audio/speech", s.speech)
	} else {
		mux.HandleFunc("POST /v1/audio/transcriptions", s.transcribe)
	}
}

func (s *Server) audioModels(w http.ResponseWriter, _ *http.Request) {
	data := []obj{}
	for _, m := range s.models {
		data = append(data, obj{{"id", m.spec.Name}, {"object", "model"}, {"created", s.start.Unix()}, {"owned_by", "enginesim"}})
	}
	vllmJSON(w, http.StatusOK, obj{{"object", "list"}, {"data", data}})
}

// model finds a served model by exact name.
func (s *Server) model(name string) *simModel {
	for _, m := range s.models {
		if m.spec.Name == name {
			return m
		}
	}
	return nil
}

type speechRequest struct {
	Model          string   `json:"model"`
	Input          string   `json:"input"`
	Voice          string   `json:"voice"`
	ResponseFormat string   `json:"response_format"`
	Speed          *float64 `json:"speed"`
}

// speech serves POST /v1/audio/speech: a tone pattern as long as the input
// would take to say (SpeechDuration), as WAV or raw PCM.
func (s *Server) speech(w http.ResponseWriter, r *http.Request) {
	var req speechRequest
	if _, ok := s.vllmDecode(w, r, &req); !ok {
		return
	}
	if s.model(req.Model) == nil {
		vllmError(w, http.StatusNotFound, fmt.Sprintf("The model `%s` does not exist.", req.Model))
		return
	}
	if strings.TrimSpace(req.Input) == "" {
		vllmError(w, http.StatusBadRequest, "input must not be empty")
		return
	}
	speed := 1.0
	if req.Speed != nil {
		speed = *req.Speed
	}
	if speed < 0.25 || speed > 4 {
		vllmError(w, http.StatusBadRequest, "speed must be between 0.25 and 4.0")
		return
	}
	format := req.ResponseFormat
	if format == "" {
		format = "mp3"
	}
	ct, ok := speechFormats[format]
	if !ok {
		vllmError(w, http.StatusBadRequest, fmt.Sprintf("response_format %q is not supported by this server; use wav or pcm", format))
		return
	}
	if !s.wait(r, time.Duration(len(req.Input))*s.cfg.InterTokenDelay) {
		return
	}
	pcm := tonePCM(req.Input, SpeechDuration(req.Input, speed))
	body := pcm
	if format == "wav" {
		body = wav.Encode(pcm, SpeechSampleRate)
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// wait sleeps d (the simulated work) unless the client goes away first.
func (s *Server) wait(r *http.Request, d time.Duration) bool {
	d += s.cfg.TTFT
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

// transcribe serves POST /v1/audio/transcriptions: it decodes the uploaded
// WAV's header for the duration and answers SimTranscriptWords for it, in
// json, text or verbose_json (with segments, and words when asked).
func (s *Server) transcribe(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, MaxRequestBody)
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		vllmError(w, http.StatusBadRequest, "expected a multipart/form-data body")
		return
	}
	form, err := multipart.NewReader(r.Body, params["boundary"]).ReadForm(MaxRequestBody)
	if err != nil {
		status := http.StatusBadRequest
		if isTooLarge(err) {
			status = http.StatusRequestEntityTooLarge
		}
		vllmError(w, status, "read form: "+err.Error())
		return
	}
	defer func() { _ = form.RemoveAll() }()
	field := func(k string) string {
		if v := form.Value[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	if s.model(field("model")) == nil {
		vllmError(w, http.StatusNotFound, fmt.Sprintf("The model `%s` does not exist.", field("model")))
		return
	}
	files := form.File["file"]
	if len(files) == 0 {
		vllmError(w, http.StatusBadRequest, "file is required")
		return
	}
	f, err := files[0].Open()
	if err != nil {
		vllmError(w, http.StatusBadRequest, "read file: "+err.Error())
		return
	}
	audio, err := io.ReadAll(f)
	_ = f.Close()
	if err != nil {
		vllmError(w, http.StatusBadRequest, "read file: "+err.Error())
		return
	}
	info, err := wav.Parse(audio)
	if err != nil {
		vllmError(w, http.StatusBadRequest, "could not decode audio (this server reads WAV only): "+err.Error())
		return
	}
	format := field("response_format")
	if format == "" {
		format = "json"
	}
	words := append(form.Value["timestamp_granularities[]"], form.Value["timestamp_granularities"]...)
	if !s.wait(r, 0) {
		return
	}
	t := SimTranscript(info.Seconds)
	switch format {
	case "json":
		vllmJSON(w, http.StatusOK, obj{{"text", t.Text}, {"usage", obj{{"type", "duration"}, {"seconds", int(math.Ceil(info.Seconds))}}}})
	case "text":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, t.Text+"\n")
	case "verbose_json":
		language := field("language")
		if language == "" {
			language = "en"
		}
		v := obj{{"task", "transcribe"}, {"language", language}, {"duration", info.Seconds}, {"text", t.Text}, {"segments", t.segments()}}
		for _, g := range words {
			if g == "word" {
				v = append(v, kv{"words", t.words()})
			}
		}
		vllmJSON(w, http.StatusOK, v)
	default:
		vllmError(w, http.StatusBadRequest, fmt.Sprintf("response_format %q is not supported by this server; use json, text or verbose_json", format))
	}
}

// Transcript is a simulated transcript with word timings.
type Transcript struct {
	Text  string
	Words []TimedWord
}

// TimedWord is one word of a Transcript and when it is said.
type TimedWord struct {
	Word       string
	Start, End float64
}

// SimTranscript is the simulator's transcript of seconds of audio: words of
// SimTranscriptWords, cycling, TranscriptWordsPerSecond of them (at least
// one), spread evenly over the audio.
func SimTranscript(seconds float64) Transcript {
	n := max(1, int(seconds*TranscriptWordsPerSecond))
	per := seconds / float64(n)
	t := Transcript{Words: make([]TimedWord, n)}
	texts := make([]string, n)
	for i := range n {
		texts[i] = SimTranscriptWords[i%len(SimTranscriptWords)]
		t.Words[i] = TimedWord{Word: texts[i], Start: round2(float64(i) * per), End: round2(float64(i+1) * per)}
	}
	t.Text = strings.Join(texts, " ")
	return t
}

// segmentWords is how many words one simulated segment holds.
const segmentWords = 8

func (t Transcript) segments() []obj {
	var out []obj
	for i := 0; i < len(t.Words); i += segmentWords {
		ws := t.Words[i:min(i+segmentWords, len(t.Words))]
		texts := make([]string, len(ws))
		for j, w := range ws {
			texts[j] = w.Word
		}
		out = append(out, obj{{"id", len(out)}, {"seek", 0}, {"start", ws[0].Start}, {"end", ws[len(ws)-1].End},
			{"text", " " + strings.Join(texts, " ")}, {"tokens", []int{}}, {"temperature", 0.0},
			{"avg_logprob", -0.2}, {"compression_ratio", 1.0}, {"no_speech_prob", 0.01}})
	}
	return out
}

func (t Transcript) words() []obj {
	out := make([]obj, len(t.Words))
	for i, w := range t.Words {
		out[i] = obj{{"word", w.Word}, {"start", w.Start}, {"end", w.End}}
	}
	return out
}

func round2(f float64) float64 { return math.Round(f*100) / 100 }
