package openai_test

import (
	"bytes"
	"mime/multipart"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/openai"
)

// form builds a multipart body; a field named "file" becomes a file part.
func form(t testing.TB, fields [][2]string) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, f := range fields {
		if f[0] == "file" {
			w, err := mw.CreateFormFile("file", "a.wav")
			require.NoError(t, err)
			_, _ = w.Write([]byte(f[1]))
			continue
		}
		require.NoError(t, mw.WriteField(f[0], f[1]))
	}
	require.NoError(t, mw.Close())
	return mw.FormDataContentType(), buf.Bytes()
}

func TestParseTranscription(t *testing.T) {
	ct, body := form(t, [][2]string{{"file", "RIFF"}, {"model", "whisper"}, {"response_format", "verbose_json"},
		{"language", "en"}, {"temperature", "0.2"}, {"timestamp_granularities[]", "word"}})
	req, err := openai.ParseTranscription(ct, body)
	require.NoError(t, err)
	assert.Equal(t, "whisper", req.Model)
	assert.Equal(t, []byte("RIFF"), req.Audio)
	assert.Equal(t, "a.wav", req.Filename)
	assert.Equal(t, "verbose_json", req.Format)
	assert.True(t, req.Words)
	require.NotNil(t, req.Temperature)
	assert.InDelta(t, 0.2, *req.Temperature, 1e-9)

	for name, tc := range map[string]struct {
		fields [][2]string
		param  string
	}{
		"no model":         {[][2]string{{"file", "x"}}, "model"},
		"no file":          {[][2]string{{"model", "m"}}, "file"},
		"empty file":       {[][2]string{{"model", "m"}, {"file", ""}}, "file"},
		"two files":        {[][2]string{{"model", "m"}, {"file", "x"}, {"file", "y"}}, "file"},
		"bad format":       {[][2]string{{"model", "m"}, {"file", "x"}, {"response_format", "mp3"}}, "response_format"},
		"bad temperature":  {[][2]string{{"model", "m"}, {"file", "x"}, {"temperature", "hot"}}, "temperature"},
		"words not json":   {[][2]string{{"model", "m"}, {"file", "x"}, {"timestamp_granularities[]", "word"}}, "timestamp_granularities"},
		"bad granularity":  {[][2]string{{"model", "m"}, {"file", "x"}, {"response_format", "verbose_json"}, {"timestamp_granularities[]", "char"}}, "timestamp_granularities"},
		"stream refused":   {[][2]string{{"model", "m"}, {"file", "x"}, {"stream", "true"}}, "stream"},
		"language garbage": {[][2]string{{"model", "m"}, {"file", "x"}, {"language", "english please"}}, "language"},
	} {
		t.Run(name, func(t *testing.T) {
			ct, body := form(t, tc.fields)
			_, err := openai.ParseTranscription(ct, body)
			var ce *canonical.Error
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, canonical.KindInvalidRequest, ce.Kind)
			assert.Equal(t, tc.param, ce.Param)
		})
	}

	_, err = openai.ParseTranscription("application/json", []byte(`{}`))
	var ce *canonical.Error
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, 415, ce.Status)
}

func TestParseTranscriptionFileTooLarge(t *testing.T) {
	ct, body := form(t, [][2]string{{"model", "m"}, {"file", strings.Repeat("x", openai.MaxAudioUpload+1)}})
	_, err := openai.ParseTranscription(ct, body)
	var ce *canonical.Error
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, canonical.KindTooLarge, ce.Kind)
}

func TestDecodeSpeechRequest(t *testing.T) {
	req, err := openai.DecodeSpeechRequest([]byte(`{"model":"kokoro","input":"hi","voice":"af","speed":1.5}`))
	require.NoError(t, err)
	assert.Equal(t, "mp3", req.Format, "OpenAI's default")
	assert.InDelta(t, 1.5, req.Speed, 1e-9)
	for _, body := range []string{
		`{"input":"hi","voice":"a"}`,
		`{"model":"m","voice":"a"}`,
		`{"model":"m","input":"  ","voice":"a"}`,
		`{"model":"m","input":"hi"}`,
		`{"model":"m","input":"hi","voice":"a","response_format":"ogg"}`,
		`{"model":"m","input":"hi","voice":"a","speed":9}`,
		`{"model":"m","input":"` + strings.Repeat("a", openai.MaxSpeechInput+1) + `","voice":"a"}`,
		`[]`,
	} {
		_, err := openai.DecodeSpeechRequest([]byte(body))
		var ce *canonical.Error
		require.ErrorAs(t, err, &ce, body[:min(len(body), 60)])
		assert.Equal(t, canonical.KindInvalidRequest, ce.Kind)
	}
}

func TestEncodeTranscription(t *testing.T) {
	tr := &canonical.Transcription{Text: "hello world", Language: "en", Duration: 61.25,
		Segments: []canonical.TranscriptSegment{{Start: 0, End: 1.5, Text: " hello"}, {ID: 1, Start: 60.5, End: 61.25, Text: " world"}}}
	b, ct, err := openai.EncodeTranscription(tr, &canonical.TranscriptionRequest{Format: "srt"})
	require.NoError(t, err)
	assert.Equal(t, "application/x-subrip; charset=utf-8", ct)
	assert.Equal(t, "1\n00:00:00,000 --> 00:00:01,500\nhello\n\n2\n00:01:00,500 --> 00:01:01,250\nworld\n\n", string(b))
	b, _, err = openai.EncodeTranscription(tr, &canonical.TranscriptionRequest{Format: "vtt"})
	require.NoError(t, err)
	assert.Equal(t, "WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nhello\n\n00:01:00.500 --> 00:01:01.250\nworld\n\n", string(b))
	b, _, err = openai.EncodeTranscription(tr, &canonical.TranscriptionRequest{Format: "json"})
	require.NoError(t, err)
	assert.JSONEq(t, `{"text":"hello world","usage":{"type":"duration","seconds":62}}`, string(b))
	b, _, err = openai.EncodeTranscription(tr, &canonical.TranscriptionRequest{Format: "text"})
	require.NoError(t, err)
	assert.Equal(t, "hello world\n", string(b))
}

// FuzzParseTranscription: no multipart body panics the parser, and every
// refusal is a canonical error a client can read.
func FuzzParseTranscription(f *testing.F) {
	ct, body := form(f, [][2]string{{"file", "RIFF....WAVE"}, {"model", "m"}, {"response_format", "verbose_json"},
		{"timestamp_granularities[]", "word"}})
	f.Add(ct, body)
	f.Add("multipart/form-data; boundary=x", []byte("--x\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nm\r\n--x--\r\n"))
	f.Add("multipart/form-data; boundary=x", []byte("--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\n"))
	f.Add("text/plain", []byte("hello"))
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		req, err := openai.ParseTranscription(contentType, body)
		if err != nil {
			var ce *canonical.Error
			require.ErrorAs(t, err, &ce)
			require.NotEmpty(t, ce.Message)
			return
		}
		require.NotEmpty(t, req.Model)
		require.NotEmpty(t, req.Audio)
	})
}
