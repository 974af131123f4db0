package relay_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/png"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
	"github.com/mindrouter/mindrouter/dataplane/internal/imagefetch"
	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
)

// TestInlineThinkIsReasoning: an engine that writes its reasoning inline as
// a leading <think> block (no reasoning parser) still gives every dialect
// reasoning, streamed (tags split across chunks) and not.
func TestInlineThinkIsReasoning(t *testing.T) {
	t.Parallel()
	script := func(enginesim.Request) *enginesim.Reply {
		return &enginesim.Reply{Content: "<think>\nThe user greets me; greet back.\n</think>\n\nHello there!"}
	}
	for _, eng := range []enginesim.Engine{enginesim.EngineOllama, enginesim.EngineVLLM} {
		for _, stream := range []bool{false, true} {
			t.Run(string(eng)+map[bool]string{true: " streamed"}[stream], func(t *testing.T) {
				t.Parallel()
				b, _ := simBackend(t, 1, eng, script)
				h := newHarness(t, b)
				c := call(stream)
				var got *canonical.Response
				if stream {
					var s sink
					_, err := h.relay.ChatStream(context.Background(), c, &s)
					require.NoError(t, err)
					got = s.response()
				} else {
					res, err := h.relay.Chat(context.Background(), c)
					require.NoError(t, err)
					got = res.Response
				}
				require.Equal(t, "The user greets me; greet back.", got.Choices[0].Message.Reasoning)
				require.Equal(t, "Hello there!", got.Choices[0].Message.Text())
			})
		}
	}
	t.Run("KeepThinkTags leaves the text alone", func(t *testing.T) {
		t.Parallel()
		b, _ := simBackend(t, 1, enginesim.EngineVLLM, script)
		h := newHarnessConfig(t, relay.Config{KeepThinkTags: true}, b)
		res, err := h.relay.Chat(context.Background(), call(false))
		require.NoError(t, err)
		require.Empty(t, res.Response.Choices[0].Message.Reasoning)
		require.Contains(t, res.Response.Choices[0].Message.Text(), "<think>")
	})
}

func TestStructuredOutputIsChecked(t *testing.T) {
	t.Parallel()
	schema := json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`)
	for _, tc := range []struct {
		name, content string
		wantErr       string
	}{
		{"valid", `{"city": "Oslo"}`, ""},
		{"not JSON", `The city is Oslo.`, "not valid JSON"},
		{"breaks the schema", `{"town": "Oslo"}`, "missing property 'city'"},
	} {
		for _, eng := range []enginesim.Engine{enginesim.EngineOllama, enginesim.EngineVLLM} {
			t.Run(tc.name+" "+string(eng), func(t *testing.T) {
				t.Parallel()
				b, _ := simBackend(t, 1, eng, func(enginesim.Request) *enginesim.Reply { return &enginesim.Reply{Content: tc.content} })
				h := newHarness(t, b)
				c := call(false)
				c.Request.ResponseFormat = &canonical.ResponseFormat{Type: canonical.FormatJSONSchema, Name: "city", Schema: schema}
				res, err := h.relay.Chat(context.Background(), c)
				rel := h.fake.WaitReleases(t, 1)
				require.Equal(t, relay.OutcomeSuccess, rel[0].Outcome, "the backend did its work")
				require.Positive(t, rel[0].Usage.Completion, "and it is charged")
				if tc.wantErr == "" {
					require.NoError(t, err)
					require.JSONEq(t, tc.content, res.Response.Choices[0].Message.Text())
					return
				}
				ce := canonical.AsError(err)
				require.Equal(t, canonical.KindUnprocessable, ce.Kind)
				require.Equal(t, canonical.CodeInvalidOutput, ce.Code)
				require.Contains(t, ce.Message, tc.wantErr)
				require.Len(t, h.fake.Admits(), 1, "an invalid answer is not retried")
			})
		}
	}
	t.Run("a schema that does not compile never reaches the control plane", func(t *testing.T) {
		t.Parallel()
		b, _ := simBackend(t, 1, enginesim.EngineVLLM, nil)
		h := newHarness(t, b)
		c := call(true)
		c.Request.ResponseFormat = &canonical.ResponseFormat{Type: canonical.FormatJSONSchema, Schema: json.RawMessage(`{"type":7}`)}
		_, err := h.relay.ChatStream(context.Background(), c, &sink{})
		require.Equal(t, canonical.KindInvalidRequest, canonical.AsError(err).Kind)
		require.Empty(t, h.fake.Admits())
	})
}

func tinyPNG(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, image.NewGray(image.Rect(0, 0, 1, 1))))
	return buf.Bytes()
}

// TestImageURLsAreFetched: both engines get images inline; a forbidden
// address is refused after admission, before any backend is called.
func TestImageURLsAreFetched(t *testing.T) {
	t.Parallel()
	img := tinyPNG(t)
	imgSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write(img)
	}))
	t.Cleanup(imgSrv.Close)
	withImage := func(stream bool) relay.Call {
		c := call(stream)
		c.Request.Messages[0].Content = append(c.Request.Messages[0].Content,
			canonical.Part{Type: canonical.PartImage, Image: &canonical.Image{URL: imgSrv.URL + "/cat.png"}})
		return c
	}
	allowLoopback := imagefetch.New(imagefetch.Config{Policy: imagefetch.Policy{AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}})
	for _, eng := range []enginesim.Engine{enginesim.EngineOllama, enginesim.EngineVLLM} {
		t.Run(string(eng), func(t *testing.T) {
			t.Parallel()
			var seen []string
			b, _ := simBackend(t, 1, eng, func(r enginesim.Request) *enginesim.Reply {
				seen = r.Messages[len(r.Messages)-1].Images
				return nil
			})
			h := newHarnessConfig(t, relay.Config{Images: allowLoopback}, b)
			_, err := h.relay.ChatStream(context.Background(), withImage(true), &sink{})
			require.NoError(t, err)
			b64 := base64.StdEncoding.EncodeToString(img)
			if eng == enginesim.EngineOllama {
				require.Equal(t, []string{b64}, seen)
			} else {
				require.Equal(t, []string{"data:image/png;base64," + b64}, seen, "vLLM gets a data URL, never the client's URL")
			}
		})
	}
	t.Run("forbidden address", func(t *testing.T) {
		t.Parallel()
		b, sim := simBackend(t, 1, enginesim.EngineOllama, nil)
		h := newHarnessConfig(t, relay.Config{Images: imagefetch.New(imagefetch.Config{})}, b)
		_, err := h.relay.Chat(context.Background(), withImage(false))
		ce := canonical.AsError(err)
		require.Equal(t, canonical.KindInvalidRequest, ce.Kind)
		require.Contains(t, ce.Message, "image URL points to a loopback address")
		require.Empty(t, sim.Stats().Requests["/api/chat"], "the backend is never called")
		rel := h.fake.WaitReleases(t, 1)
		require.Equal(t, relay.OutcomeRejected, rel[0].Outcome)
		require.Zero(t, rel[0].Usage.Prompt)
	})
}
