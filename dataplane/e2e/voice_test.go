package e2e

import (
	"context"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/e2e/internal/cluster"
	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
	"github.com/mindrouter/mindrouter/dataplane/internal/wav"
)

// Models the voice simulators serve.
const (
	voiceTTS = "sim-kokoro"
	voiceSTT = "sim-whisper"
)

// voiceBinary finds a Debian tool the voice test needs. Outside CI a missing
// one skips the test; in CI (.ci/run installs both) it fails it.
func voiceBinary(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is required (Debian package %s; .ci/run installs it): %v", name, pkg, err)
	}
	t.Skipf("no %s (apt-get install %s; .ci/run installs it)", name, pkg)
	return ""
}

// TestVoice sends speech made by espeak-ng through STT with openai-go in
// every response format, and checks that TTS answers playable audio of the
// requested format (sox reads it), through admission and release like chat.
func TestVoice(t *testing.T) {
	t.Parallel()
	espeak := voiceBinary(t, "espeak-ng", "espeak-ng")
	soxi := voiceBinary(t, "soxi", "sox")
	sox := voiceBinary(t, "sox", "sox")

	speech := filepath.Join(t.TempDir(), "hello.wav")
	out, err := exec.Command(espeak, "-w", speech, "hello world").CombinedOutput()
	require.NoError(t, err, "espeak-ng: %s", out)
	audio, err := os.ReadFile(speech)
	require.NoError(t, err)
	info, err := wav.Parse(audio)
	require.NoError(t, err)
	require.Greater(t, info.Seconds, 0.3, "espeak-ng said hello world")
	want := enginesim.SimTranscript(info.Seconds)

	_, ttsURL := startSim(t, enginesim.Config{Engine: enginesim.EngineTTS, Models: []enginesim.ModelSpec{{Name: voiceTTS}}})
	_, sttURL := startSim(t, enginesim.Config{Engine: enginesim.EngineSTT, Models: []enginesim.ModelSpec{{Name: voiceSTT}}})
	c := cluster.Start(t, cluster.Options{Backends: []cluster.Backend{
		{Name: "tts-sim", Engine: "tts", URL: ttsURL}, {Name: "stt-sim", Engine: "stt", URL: sttURL}}})
	client := openaiClient(c, c.AdminKey)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	voiceWaitHealthy(ctx, t, c, "tts-sim", "stt-sim")

	transcribe := func(t *testing.T, format openai.AudioResponseFormat, extra ...option.RequestOption) (*openai.AudioTranscriptionNewResponseUnion, *http.Response) {
		f, err := os.Open(speech)
		require.NoError(t, err)
		defer f.Close()
		params := openai.AudioTranscriptionNewParams{File: openai.File(f, "hello.wav", "audio/wav"),
			Model: openai.AudioModel(voiceSTT), ResponseFormat: format, Language: openai.String("en")}
		if format == openai.AudioResponseFormatVerboseJSON {
			params.TimestampGranularities = []string{"word", "segment"}
		}
		var raw *http.Response
		res, err := client.Audio.Transcriptions.New(ctx, params, append(extra, option.WithResponseInto(&raw))...)
		require.NoError(t, err)
		return res, raw
	}

	t.Run("transcription json", func(t *testing.T) {
		res, _ := transcribe(t, openai.AudioResponseFormatJSON)
		assert.Equal(t, want.Text, res.Text)
	})
	t.Run("transcription verbose_json", func(t *testing.T) {
		res, _ := transcribe(t, openai.AudioResponseFormatVerboseJSON)
		assert.Equal(t, want.Text, res.Text)
		assert.InDelta(t, info.Seconds, res.Duration, 0.01)
		assert.Equal(t, "en", res.Language)
		require.NotEmpty(t, res.Segments)
		require.Len(t, res.Words, len(want.Words))
		assert.Equal(t, want.Words[0].Word, res.Words[0].Word)
	})
	for _, tc := range []struct {
		format openai.AudioResponseFormat
		ctype  string
		body   string
	}{
		{openai.AudioResponseFormatText, "text/plain", want.Text + "\n"},
		{openai.AudioResponseFormatSRT, "application/x-subrip", "1\n00:00:00,000 --> "},
		{openai.AudioResponseFormatVTT, "text/vtt", "WEBVTT\n\n00:00:00.000 --> "},
	} {
		t.Run("transcription "+string(tc.format), func(t *testing.T) {
			var raw *http.Response
			_, err := client.Audio.Transcriptions.New(ctx, openai.AudioTranscriptionNewParams{
				File: openai.File(strings.NewReader(string(audio)), "hello.wav", "audio/wav"), Model: openai.AudioModel(voiceSTT),
				ResponseFormat: tc.format}, option.WithResponseBodyInto(&raw))
			require.NoError(t, err)
			defer raw.Body.Close()
			b, err := io.ReadAll(raw.Body)
			require.NoError(t, err)
			assert.Contains(t, raw.Header.Get("Content-Type"), tc.ctype)
			assert.True(t, strings.HasPrefix(string(b), tc.body), "%s answer: %q", tc.format, b)
			assert.Contains(t, string(b), want.Text)
		})
	}

	for _, format := range []openai.AudioSpeechNewParamsResponseFormat{openai.AudioSpeechNewParamsResponseFormatWAV, openai.AudioSpeechNewParamsResponseFormatPCM} {
		t.Run("speech "+string(format), func(t *testing.T) {
			input := "Hello from the gateway."
			resp, err := client.Audio.Speech.New(ctx, openai.AudioSpeechNewParams{Input: input, Model: openai.SpeechModel(voiceTTS),
				Voice:          openai.AudioSpeechNewParamsVoiceUnion{OfAudioSpeechNewsVoiceString2: openai.String("alloy")},
				ResponseFormat: format, Speed: openai.Float(1)})
			require.NoError(t, err)
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			dir := t.TempDir()
			path := filepath.Join(dir, "speech."+string(format))
			require.NoError(t, os.WriteFile(path, b, 0o600))
			if format == openai.AudioSpeechNewParamsResponseFormatPCM {
				// Raw PCM has no header: sox converts it as OpenAI's pcm is
				// (24 kHz mono signed 16-bit) into a WAV soxi reads.
				wavPath := filepath.Join(dir, "speech.wav")
				out, err := exec.Command(sox, "-t", "raw", "-r", "24000", "-e", "signed", "-b", "16", "-c", "1", path, wavPath).CombinedOutput()
				require.NoError(t, err, "sox: %s", out)
				path = wavPath
			} else {
				assert.Equal(t, "audio/wav", resp.Header.Get("Content-Type"))
			}
			args := []string{"-D", path}
			out, err := exec.Command(soxi, args...).CombinedOutput()
			require.NoError(t, err, "soxi: %s", out)
			secs, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
			require.NoError(t, err, "soxi: %s", out)
			assert.InDelta(t, enginesim.SpeechDuration(input, 1), secs, 0.01, "playable audio as long as the input takes to say")
		})
	}

	t.Run("errors in OpenAI's dialect", func(t *testing.T) {
		_, err := client.Audio.Speech.New(ctx, openai.AudioSpeechNewParams{Input: "hi", Model: openai.SpeechModel(voiceTTS),
			Voice:          openai.AudioSpeechNewParamsVoiceUnion{OfAudioSpeechNewsVoiceString2: openai.String("alloy")},
			ResponseFormat: openai.AudioSpeechNewParamsResponseFormatMP3})
		apiErr := oaiAPIError(t, err)
		assert.Equal(t, http.StatusBadRequest, apiErr.StatusCode, "the simulator cannot encode mp3 and says so")
		assert.Contains(t, apiErr.Message, "mp3")

		_, err = client.Audio.Speech.New(ctx, openai.AudioSpeechNewParams{Input: "hi", Model: openai.SpeechModel(voiceSTT),
			Voice:          openai.AudioSpeechNewParamsVoiceUnion{OfAudioSpeechNewsVoiceString2: openai.String("alloy")},
			ResponseFormat: openai.AudioSpeechNewParamsResponseFormatWAV})
		apiErr = oaiAPIError(t, err)
		assert.Equal(t, http.StatusBadRequest, apiErr.StatusCode, "an STT model does not speak")

		_, err = client.Audio.Transcriptions.New(ctx, openai.AudioTranscriptionNewParams{
			File: openai.File(strings.NewReader("not audio"), "x.wav", "audio/wav"), Model: openai.AudioModel(voiceSTT)})
		apiErr = oaiAPIError(t, err)
		assert.Equal(t, http.StatusBadRequest, apiErr.StatusCode, "the backend's refusal passes through")

		_, err = client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: voiceTTS, Messages: oaiUser("hi")})
		apiErr = oaiAPIError(t, err)
		assert.Equal(t, http.StatusBadRequest, apiErr.StatusCode, "a speech model does not chat")
	})

	// Releases of answered requests are sent after the reply: wait for them.
	require.Eventually(t, func() bool {
		var backends []backendJSON
		if _, err := c.AdminJSON(ctx, c.RESTURL, http.MethodGet, "/api/admin/backends", nil, &backends); err != nil {
			return false
		}
		for _, b := range backends {
			if b.CurrentConcurrent != 0 {
				return false
			}
		}
		return true
	}, 10*time.Second, 50*time.Millisecond, "every lease released")
	voiceUsage(t, c, info.Seconds)
}

// voiceWaitHealthy waits until the named backends are healthy.
func voiceWaitHealthy(ctx context.Context, t *testing.T, c *cluster.Cluster, names ...string) {
	t.Helper()
	require.Eventually(t, func() bool {
		var backends []backendJSON
		if _, err := c.AdminJSON(ctx, c.RESTURL, http.MethodGet, "/api/admin/backends", nil, &backends); err != nil {
			return false
		}
		healthy := 0
		for _, b := range backends {
			for _, n := range names {
				if b.Name == n && b.Status == "healthy" && len(b.Models) > 0 {
					healthy++
				}
			}
		}
		return healthy == len(names)
	}, time.Minute, 100*time.Millisecond, "voice backends healthy\n%s", c.Logs())
}

// voiceUsage checks that the audit log recorded the voice requests under
// their surfaces, charged by the documented rule: a speech request its
// input's characters / 4 in prompt tokens, a transcription 50 prompt tokens
// per started second of audio; and with the text spoken and the transcript as
// their content.
func voiceUsage(t *testing.T, c *cluster.Cluster, audioSeconds float64) {
	t.Helper()
	var speech, transcription []auditRecord
	require.Eventually(t, func() bool {
		speech = auditRecords(t, c, "&surface=openai-audio-speech&status=completed")
		transcription = auditRecords(t, c, "&surface=openai-audio-transcription&status=completed")
		return len(speech) >= 2 && len(transcription) >= 5
	}, 30*time.Second, 200*time.Millisecond, "audit records of the voice surfaces")
	for _, r := range speech {
		assert.Equal(t, "/v1/audio/speech", r.Endpoint)
		assert.Equal(t, int64(6), r.PromptTokens, "23 characters / 4, rounded up")
		assert.Equal(t, "Hello from the gateway.", auditFull(t, c, r.RequestID).PromptText, "the text spoken is recorded")
	}
	for _, r := range transcription {
		assert.Equal(t, int64(math.Ceil(audioSeconds))*50, r.PromptTokens)
		assert.Positive(t, r.CompletionTokens)
		assert.Contains(t, auditFull(t, c, r.RequestID).ResponseText, "the quick", "the transcript (the simulator's words for the audio's length) is recorded")
	}
}

// auditFull is one audit record in full, content included (search results
// carry none).
func auditFull(t *testing.T, c *cluster.Cluster, requestID string) auditRecord {
	t.Helper()
	var full struct {
		Record auditRecord `json:"record"`
	}
	status, err := c.AdminJSON(t.Context(), c.RESTURL, http.MethodGet, "/api/admin/audit/"+requestID, nil, &full)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	return full.Record
}
