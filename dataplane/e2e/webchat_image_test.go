package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/e2e/internal/cluster"
	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
)

// visionScript answers with what the engine received: how many images the
// last message carried and the SHA-256 and size of each (decoded from the
// base64 Ollama gets), so the page shows what the backend saw.
func visionScript(req enginesim.Request) *enginesim.Reply {
	last := req.Messages[len(req.Messages)-1]
	parts := []string{fmt.Sprintf("I see %d image(s) in your message.", len(last.Images))}
	for _, im := range last.Images {
		b, err := base64.StdEncoding.DecodeString(im)
		if err != nil {
			parts = append(parts, "One is not base64.")
			continue
		}
		sum := sha256.Sum256(b)
		parts = append(parts, fmt.Sprintf("sha256 %s, %d bytes.", hex.EncodeToString(sum[:]), len(b)))
	}
	return &enginesim.Reply{Content: strings.Join(parts, " ")}
}

// writePNG writes a w×h PNG (a colour gradient) and returns its path and bytes.
func writePNG(t *testing.T, name string, w, h int) (string, []byte) {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.NRGBA{R: uint8(255 * x / w), G: uint8(255 * y / h), B: 160, A: 255}) //nolint:gosec // < 256
		}
	}
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, img))
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o600))
	return path, buf.Bytes()
}

func (p *page) pickModel(name string) {
	p.t.Helper()
	require.True(p.t, eval[bool](p, `(() => { const m = document.getElementById("chat-model"); m.value = `+jsString(name)+`;
		m.dispatchEvent(new Event("change")); return m.value === `+jsString(name)+`; })()`), "model %s in the picker", name)
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func (p *page) attach(path string) {
	p.t.Helper()
	p.do(chromedp.SetUploadFiles(chromedp.CSS("#chat-file"), []string{path}))
}

func (p *page) shelf() []string {
	return eval[[]string](p, `[...document.querySelectorAll("#chat-attachments img")].map(i => i.alt)`)
}

// TestWebChatImageInBrowser attaches images in headless Chromium and sends
// them to a vision model of the engine simulator: the attach control is
// enabled for vision models only, the browser refuses files over its limits,
// thumbnails can be removed before sending, the engine receives the very
// bytes (as Ollama's images), the audit record keeps the image once as an
// artifact by its hash, a reload shows the thumbnail, the server refuses a
// file that is not an image whatever its name (the page shows why), and the
// exports carry the image; axe-core finds nothing serious with an image
// attached, light and dark.
func TestWebChatImageInBrowser(t *testing.T) {
	t.Parallel()
	sim, simURL := startSim(t, enginesim.Config{Engine: enginesim.EngineOllama, Script: visionScript, Models: []enginesim.ModelSpec{
		{Name: "sim-eye", ContextLength: 8192, Capabilities: []string{"completion", "vision"}},
		{Name: "sim-text", ContextLength: 8192, Capabilities: []string{"completion"}},
	}})
	c := cluster.Start(t, cluster.Options{Backends: []cluster.Backend{{Name: "sim", Engine: "ollama", URL: simURL}}})
	createUser(t, c, "iris", "student")
	dot, dotBytes := writePNG(t, "sunset.png", 64, 48)
	other, _ := writePNG(t, "other.png", 20, 20)
	bigPath := filepath.Join(t.TempDir(), "huge.png")
	require.NoError(t, os.WriteFile(bigPath, append(append([]byte(nil), dotBytes...), make([]byte, 2<<20)...), 0o600))
	fake := filepath.Join(t.TempDir(), "notes.png")
	require.NoError(t, os.WriteFile(fake, []byte("these are notes, not a picture\n"), 0o600))
	sum := sha256.Sum256(dotBytes)
	hash := hex.EncodeToString(sum[:])

	p := newPage(t, c.DataPlaneURL)
	p.signIn("iris", "correct horse battery", "/chat")
	p.pickModel("sim-text:latest")
	assert.True(t, eval[bool](p, `document.getElementById("chat-attach").disabled`), "no images for a model without vision")
	p.pickModel("sim-eye:latest")
	assert.False(t, eval[bool](p, `document.getElementById("chat-attach").disabled`), "a vision model takes images")
	assert.Equal(t, "Image files", eval[string](p, `document.getElementById("chat-file").labels[0].textContent`), "the file input is labelled")

	// The browser refuses a file over 2 MiB and says why; two images attach, one is removed.
	p.attach(bigPath)
	require.Eventually(t, func() bool { return strings.Contains(p.text("#chat-status"), "larger than 2 MiB") }, 10*time.Second, 50*time.Millisecond)
	assert.Empty(t, p.shelf())
	p.attach(other)
	p.attach(dot)
	require.Eventually(t, func() bool { return len(p.shelf()) == 2 }, 10*time.Second, 50*time.Millisecond, "two thumbnails")
	assert.Equal(t, []string{"other.png", "sunset.png"}, p.shelf())
	p.do(chromedp.Click(chromedp.CSS(`#chat-attachments button[aria-label="Remove other.png"]`)))
	assert.Equal(t, []string{"sunset.png"}, p.shelf(), "removed before sending")
	assert.Equal(t, "chat-attach", eval[string](p, `document.activeElement.id`), "focus goes back to the attach button")
	p.check("chat-image")

	// Sent: the engine receives the very bytes, as Ollama's images.
	p.chatSend("What is in this picture?")
	p.waitReplyDone()
	assert.Equal(t, fmt.Sprintf("I see 1 image(s) in your message. sha256 %s, %d bytes.", hash, len(dotBytes)), strings.TrimSpace(p.lastReply()))
	assert.Contains(t, string(sim.Stats().LastRequestBody), `"images":["`+base64.StdEncoding.EncodeToString(dotBytes)+`"]`)
	assert.Empty(t, p.shelf(), "the composer is empty again")
	assert.Equal(t, "sunset.png", eval[string](p, `[...document.querySelectorAll("#messages article.user img")].pop().alt`))
	path := eval[string](p, `location.pathname`)

	// Audited like an API request: the image once, as an artifact named by its hash.
	rec := chatAudit(t, c, "picture")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var full struct {
		Record struct {
			ArtifactHashes []string `json:"artifact_hashes"`
		} `json:"record"`
	}
	status, err := c.AdminJSON(ctx, c.RESTURL, http.MethodGet, "/api/admin/audit/"+rec.RequestID, nil, &full)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, []string{hash}, full.Record.ArtifactHashes)

	// A reload shows the thumbnail, loaded (the CSP allows data: images).
	p.open(path)
	require.Eventually(t, func() bool {
		return eval[int](p, `(document.querySelector('#messages article.user img[alt="sunset.png"]') || {naturalWidth: 0}).naturalWidth`) == 64
	}, 10*time.Second, 50*time.Millisecond, "the thumbnail is shown after a reload")
	p.check("chat-image-sent")

	// The server is the authority: a text file named .png passes the browser's check and is refused with 415.
	p.noConsoleErrors()
	p.attach(fake)
	require.Eventually(t, func() bool { return len(p.shelf()) == 1 }, 10*time.Second, 50*time.Millisecond)
	p.chatSend("And this one?")
	require.Eventually(t, func() bool { return !p.chatBusy() && p.text("#chat-status") == "The reply failed." }, 30*time.Second, 50*time.Millisecond)
	assert.Contains(t, p.text("#messages article.assistant:last-child .error"), "is not a PNG, JPEG, WebP or GIF image")
	status = eval[int](p, `fetch("/chat/send", {method: "POST", headers: {"Content-Type": "application/json", "X-CSRF-Token": document.getElementById("chat-form").dataset.csrf},
		body: JSON.stringify({model: "sim-eye:latest", content: "x", images: [{name: "n.png", url: "data:image/png;base64," + btoa("not an image")}]})}).then(r => r.status)`, chromedp.EvalAwaitPromise)
	assert.Equal(t, http.StatusUnsupportedMediaType, status)
	// Chromium logs the two refused fetches; nothing else.
	time.Sleep(100 * time.Millisecond)
	p.mu.Lock()
	for _, e := range p.errs {
		assert.Contains(t, e, "status of 415", "console: %s", e)
	}
	p.errs = nil
	p.mu.Unlock()

	// The exports carry it: JSON as a data URL, Markdown names it.
	raw := eval[string](p, `fetch(location.pathname + "/export?format=json").then(r => r.text())`, chromedp.EvalAwaitPromise)
	var doc struct {
		Messages []struct {
			Images []struct{ Name, URL, SHA256 string } `json:"images"`
		} `json:"messages"`
	}
	require.NoError(t, json.Unmarshal([]byte(raw), &doc))
	require.NotEmpty(t, doc.Messages)
	require.Len(t, doc.Messages[0].Images, 1)
	assert.Equal(t, "data:image/png;base64,"+base64.StdEncoding.EncodeToString(dotBytes), doc.Messages[0].Images[0].URL)
	assert.Equal(t, hash, doc.Messages[0].Images[0].SHA256)
	md := eval[string](p, `fetch(location.pathname + "/export?format=markdown").then(r => r.text())`, chromedp.EvalAwaitPromise)
	assert.Contains(t, md, "*[image: sunset.png, image/png, ")
	p.noConsoleErrors()
}
