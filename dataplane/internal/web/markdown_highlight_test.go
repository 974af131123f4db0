package web

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestCodeBlocksAreHighlightedWithClasses: a Go block becomes chroma's
// spans with classes (no style attribute, no script), survives the sanitizer,
// and keeps its language class; unknown languages and plain blocks stay
// plain text; markup inside code is escaped, never rendered.
func TestCodeBlocksAreHighlightedWithClasses(t *testing.T) {
	t.Parallel()
	out := string(renderMarkdown("```go\n// hi\nfunc main() { fmt.Println(\"<script>alert(1)</script>\", 42) }\n```\n"))
	assert.Contains(t, out, `<pre class="chroma"><code class="language-go">`)
	assert.Contains(t, out, `<span class="kd">func</span>`)
	assert.Contains(t, out, `<span class="c1">// hi`)
	assert.Contains(t, out, `<span class="mi">42</span>`)
	assert.Contains(t, out, "&lt;script&gt;")
	assert.NotContains(t, out, "<script")
	assert.NotContains(t, out, "style=")

	plain := string(renderMarkdown("```nosuchlang\nfunc <b>x</b>\n```\n"))
	assert.Contains(t, plain, `<code class="language-nosuchlang">func &lt;b&gt;x&lt;/b&gt;`)
	assert.NotContains(t, plain, "<span")
	none := string(renderMarkdown("```\nplain\n```\n"))
	assert.Contains(t, none, "<pre class=\"chroma\"><code>plain\n</code></pre>")

	// A class a model writes itself is not chroma's: raw HTML is dropped, and
	// a hostile language name never reaches an attribute.
	odd := string(renderMarkdown("```go\"onclick=alert(1)\nx\n```\n<span class=\"kd\" onclick=\"x\">y</span>"))
	assert.NotContains(t, odd, "onclick")
	big := string(renderMarkdown("```go\n" + strings.Repeat("x := 1\n", maxHighlight/6) + "```\n"))
	assert.NotContains(t, big, "<span", "too long to highlight: plain")
}
