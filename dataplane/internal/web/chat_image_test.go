package web

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/cpclient"
	"github.com/mindrouter/mindrouter/dataplane/internal/tokens"
)

// pngBytes is a w×h PNG of noise-free stripes (real PNG bytes).
func pngBytes(w, h int) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.NRGBA{R: uint8(x * 7), G: uint8(y * 13), B: uint8(x ^ y), A: 255}) //nolint:gosec // wraps on purpose
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

func pngURL(w, h int) string {
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(pngBytes(w, h))
}

// bigImage is a "PNG" of n bytes: a real PNG signature, then padding (the
// sniffer reads the signature; the size is what is tested).
func bigImage(n int) string {
	b := append(pngBytes(1, 1), make([]byte, n)...)[:n]
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(b)
}

func imageBody(model, content string, urls ...string) string {
	ims := make([]ChatInputImage, len(urls))
	for i, u := range urls {
		ims[i] = ChatInputImage{Name: fmt.Sprintf("pic%d.png", i+1), URL: u}
	}
	b, _ := json.Marshal(ChatInput{Model: model, Content: content, Images: ims})
	return string(b)
}

// TestChatSendWithImages: images go to the model as image parts of the user's
// turn (the same bytes), are kept with the message (name, type, bytes), show
// as thumbnails with their names as alt text after a reload, and go along
// with the next message.
func TestChatSendWithImages(t *testing.T) {
	t.Parallel()
	h, convs, rl := newChatHandler(t)
	raw := pngBytes(40, 30)
	url := "data:image/png;base64," + base64.StdEncoding.EncodeToString(raw)
	w := chatPost(h, imageBody("llama3", "What is this?", url), "s-user", "c-user", nil)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())

	require.Len(t, rl.calls, 1)
	msgs := rl.calls[0].Request.Messages
	require.Len(t, msgs, 1)
	require.Len(t, msgs[0].Content, 2)
	assert.Equal(t, "What is this?", msgs[0].Content[0].Text)
	im := msgs[0].Content[1]
	require.Equal(t, canonical.PartImage, im.Type)
	assert.Equal(t, "image/png", im.Image.MediaType)
	got, err := base64.StdEncoding.DecodeString(im.Image.Data)
	require.NoError(t, err)
	assert.Equal(t, raw, got, "the model gets the very bytes")

	_, ms, err := convs.GetConversation(t.Context(), cpclient.Caller{Session: "s-user"}, 1)
	require.NoError(t, err)
	require.Len(t, ms, 2)
	assert.Equal(t, []cpclient.ChatImage{{Name: "pic1.png", MediaType: "image/png", Data: raw}}, ms[0].Images, "kept with the user's turn")
	assert.Empty(t, ms[1].Images)

	page := html.UnescapeString(get(h, "/chat/1", "s-user").Body.String())
	assert.Contains(t, page, `<img src="`+url+`" alt="pic1.png"`, "a thumbnail named by its file")

	// The next message carries the earlier image along, counted in the window.
	w = chatPost(h, `{"conversation_id":1,"model":"llama3","content":"And now?"}`, "s-user", "c-user", nil)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Len(t, rl.calls, 2)
	assert.True(t, rl.calls[1].Request.Messages[0].HasImages())

	// An image alone is a message; the conversation is titled by its name.
	w = chatPost(h, imageBody("llama3", "", url), "s-user", "c-user", nil)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	c, _, err := convs.GetConversation(t.Context(), cpclient.Caller{Session: "s-user"}, 2)
	require.NoError(t, err)
	assert.Equal(t, "pic1.png", c.Title)
}

// TestChatImageLimits: the server enforces the types and sizes whatever the
// page did, each refusal in the OpenAI envelope with its own status, before
// a conversation is created or a model called.
func TestChatImageLimits(t *testing.T) {
	t.Parallel()
	h, convs, rl := newChatHandler(t)
	h.cp.(*fakeCP).status.Models = append(h.cp.(*fakeCP).status.Models,
		cpclient.CatalogEntry{Name: "textonly", ContextLength: 4096, Capabilities: []string{"completion"}, HealthyBackends: 1})
	ok := pngURL(4, 4)
	gif := "data:image/gif;base64," + base64.StdEncoding.EncodeToString([]byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"))
	svg := "data:image/svg+xml;base64," + base64.StdEncoding.EncodeToString([]byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`))
	for _, tc := range []struct {
		name, body string
		status     int
		says       string
	}{
		{"five images", imageBody("llama3", "x", ok, ok, ok, ok, ok), 400, "at most 4 images"},
		{"one too large", imageBody("llama3", "x", bigImage(maxChatImageBytes+1)), 413, "larger than 2 MiB"},
		{"together too large", imageBody("llama3", "x", bigImage(maxChatImageBytes), bigImage(maxChatImagesBytes-maxChatImageBytes+1)), 413, "3 MiB together"},
		{"svg", imageBody("llama3", "x", svg), 415, "not a PNG, JPEG, WebP or GIF"},
		{"type not matching the bytes", imageBody("llama3", "x", strings.Replace(gif, "image/gif", "image/png", 1)), 415, "does not match"},
		{"not a data URL", imageBody("llama3", "x", "https://example.org/a.png"), 400, "data URL"},
		{"bad base64", imageBody("llama3", "x", "data:image/png;base64,!!!!"), 400, "base64"},
		{"text only model", imageBody("textonly", "x", ok), 400, "does not accept images"},
	} {
		w := chatPost(h, tc.body, "s-user", "c-user", nil)
		assert.Equal(t, tc.status, w.Code, "%s: %s", tc.name, w.Body.String())
		var env struct {
			Error struct{ Message, Type string } `json:"error"`
		}
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &env), tc.name)
		assert.Contains(t, env.Error.Message, tc.says, tc.name)
		assert.NotEmpty(t, env.Error.Type, tc.name)
	}
	assert.Empty(t, rl.calls, "nothing reached a model")
	list, err := convs.ListConversations(t.Context(), cpclient.Caller{Session: "s-user"})
	require.NoError(t, err)
	assert.Empty(t, list, "nothing was created")

	// A GIF within the limits is fine.
	w := chatPost(h, imageBody("llama3", "x", gif, ok, ok, ok), "s-user", "c-user", nil)
	assert.Equal(t, http.StatusOK, w.Code, w.Body.String())
}

// TestChatRequestCountsImages: each image counts tokens.PerImage in the
// window; a model without vision gets the earlier images named, not sent.
func TestChatRequestCountsImages(t *testing.T) {
	t.Parallel()
	pic := []cpclient.ChatImage{{Name: "cat.png", MediaType: "image/png", Data: pngBytes(2, 2)}}
	history := []cpclient.ChatMessage{
		{Role: "user", Content: "look", Images: pic, Status: "complete"},
		{Role: "assistant", Content: "a cat", Status: "complete"},
	}
	in := ChatInput{Model: "m", Content: "more"}
	// Text alone fits in 100 tokens; the image's 765 do not.
	req, dropped := chatRequest(in, nil, history, 400, true)
	assert.Equal(t, 2, dropped, "the turn with the image does not fit three quarters of 400 tokens")
	assert.Len(t, req.Messages, 1)
	req, dropped = chatRequest(in, nil, history, int64(tokens.PerImage)*2, true)
	assert.Zero(t, dropped)
	assert.True(t, req.Messages[0].HasImages())

	req, _ = chatRequest(in, nil, history, 0, false)
	assert.False(t, req.HasImages(), "no images for a model without vision")
	assert.Equal(t, "look\n[image: cat.png]", req.Messages[0].Text())
}
