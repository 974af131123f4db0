package openai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"mime/multipart"
	"net/textproto"
	"strconv"
	"strings"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
)

// EncodeUpstreamTranscription writes the multipart body of POST
// /v1/audio/transcriptions for an OpenAI-compatible STT engine and returns
// it with its Content-Type. The engine is always asked for verbose_json,
// which carries the audio's duration (what the request is charged for) and
// the segment timings every client format is rendered from.
func EncodeUpstreamTranscription(req *canonical.TranscriptionRequest, model string) ([]byte, string, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	name := req.Filename
	if name == "" {
		name = "audio"
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, name))
	ct := req.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	h.Set("Content-Type", ct)
	fw, err := mw.CreatePart(h)
	if err != nil {
		return nil, "", err
	}
	if _, err := fw.Write(req.Audio); err != nil {
		return nil, "", err
	}
	fields := [][2]string{{"model", model}, {"response_format", "verbose_json"},
		{"language", req.Language}, {"prompt", req.Prompt}}
	if req.Temperature != nil {
		fields = append(fields, [2]string{"temperature", strconv.FormatFloat(*req.Temperature, 'f', -1, 64)})
	}
	if req.Words {
		fields = append(fields, [2]string{"timestamp_granularities[]", "word"})
	}
	if req.Segments || req.Words {
		fields = append(fields, [2]string{"timestamp_granularities[]", "segment"})
	}
	for _, f := range fields {
		if f[1] == "" {
			continue
		}
		if err := mw.WriteField(f[0], f[1]); err != nil {
			return nil, "", err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), mw.FormDataContentType(), nil
}

type wireSegment struct {
	ID    int     `json:"id"`
	Start float64 `json:"start"`
	End   float64 `json:"end"`
	Text  string  `json:"text"`
}

type wireWord struct {
	Word  string  `json:"word"`
	Start float64 `json:"start"`
	End   float64 `json:"end"`
}

// DecodeUpstreamTranscription parses an STT engine's verbose_json answer.
// An engine that answered plain json (no timings) is accepted too; its
// Duration is then 0 and the relay measures the audio itself.
func DecodeUpstreamTranscription(body []byte) (*canonical.Transcription, error) {
	var w struct {
		Text     *string       `json:"text"`
		Language string        `json:"language"`
		Duration float64       `json:"duration"`
		Segments []wireSegment `json:"segments"`
		Words    []wireWord    `json:"words"`
	}
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, fmt.Errorf("decode transcription answer: %w", err)
	}
	if w.Text == nil {
		return nil, fmt.Errorf("transcription answer has no text")
	}
	if w.Duration < 0 || math.IsNaN(w.Duration) || math.IsInf(w.Duration, 0) {
		return nil, fmt.Errorf("transcription answer has duration %v", w.Duration)
	}
	out := &canonical.Transcription{Text: strings.TrimSpace(*w.Text), Language: w.Language, Duration: w.Duration}
	for _, s := range w.Segments {
		out.Segments = append(out.Segments, canonical.TranscriptSegment{ID: s.ID, Start: s.Start, End: s.End, Text: s.Text})
	}
	for _, x := range w.Words {
		out.Words = append(out.Words, canonical.TranscriptWord{Word: x.Word, Start: x.Start, End: x.End})
	}
	return out, nil
}

// EncodeTranscription renders a transcript in the client's response_format
// and returns it with its Content-Type. json carries OpenAI's duration usage
// ({"type":"duration","seconds":n}); verbose_json lists words only when they
// were asked for.
func EncodeTranscription(t *canonical.Transcription, req *canonical.TranscriptionRequest) ([]byte, string, error) {
	switch req.Format {
	case "text":
		return []byte(t.Text + "\n"), "text/plain; charset=utf-8", nil
	case "srt":
		return []byte(subtitles(t, false)), "application/x-subrip; charset=utf-8", nil
	case "vtt":
		return []byte(subtitles(t, true)), "text/vtt; charset=utf-8", nil
	case "verbose_json":
		segs := make([]wireSegment, 0, len(t.Segments))
		for _, s := range segments(t) {
			segs = append(segs, wireSegment(s))
		}
		w := struct {
			Task     string        `json:"task"`
			Language string        `json:"language"`
			Duration float64       `json:"duration"`
			Text     string        `json:"text"`
			Segments []wireSegment `json:"segments"`
			Words    []wireWord    `json:"words,omitempty"`
			Usage    durationUsage `json:"usage"`
		}{"transcribe", t.Language, t.Duration, t.Text, segs, nil, usageOf(t)}
		if req.Words {
			w.Words = make([]wireWord, 0, len(t.Words))
			for _, x := range t.Words {
				w.Words = append(w.Words, wireWord(x))
			}
		}
		b, err := marshal(&w)
		return b, "application/json", err
	}
	b, err := marshal(&struct {
		Text  string        `json:"text"`
		Usage durationUsage `json:"usage"`
	}{t.Text, usageOf(t)})
	return b, "application/json", err
}

type durationUsage struct {
	Type    string `json:"type"`
	Seconds int64  `json:"seconds"`
}

func usageOf(t *canonical.Transcription) durationUsage {
	return durationUsage{Type: "duration", Seconds: int64(math.Ceil(t.Duration))}
}

// segments are the transcript's segments, or one spanning the whole audio
// when the engine gave none.
func segments(t *canonical.Transcription) []canonical.TranscriptSegment {
	if len(t.Segments) > 0 {
		return t.Segments
	}
	if t.Text == "" {
		return nil
	}
	return []canonical.TranscriptSegment{{Start: 0, End: t.Duration, Text: t.Text}}
}

// subtitles renders SubRip (comma before the milliseconds, numbered cues)
// or WebVTT (a WEBVTT header, a dot before the milliseconds).
func subtitles(t *canonical.Transcription, vtt bool) string {
	var b strings.Builder
	if vtt {
		b.WriteString("WEBVTT\n\n")
	}
	for i, s := range segments(t) {
		if !vtt {
			fmt.Fprintf(&b, "%d\n", i+1)
		}
		fmt.Fprintf(&b, "%s --> %s\n%s\n\n", timestamp(s.Start, vtt), timestamp(s.End, vtt), strings.TrimSpace(s.Text))
	}
	return b.String()
}

func timestamp(sec float64, vtt bool) string {
	ms := int64(math.Round(max(sec, 0) * 1000))
	sep := ","
	if vtt {
		sep = "."
	}
	return fmt.Sprintf("%02d:%02d:%02d%s%03d", ms/3600000, ms/60000%60, ms/1000%60, sep, ms%1000)
}
