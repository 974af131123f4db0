package web

import (
	"bytes"
	"html"
	"regexp"

	"github.com/alecthomas/chroma/v2"
	chromahtml "github.com/alecthomas/chroma/v2/formatters/html"
	"github.com/alecthomas/chroma/v2/lexers"
	"github.com/alecthomas/chroma/v2/styles"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/renderer"
	"github.com/yuin/goldmark/util"
)

// maxHighlight bounds the code a fenced block may hold and still be
// highlighted; a longer one is shown plain (lexing is linear, but a reply's
// page should not spend its time colouring a megabyte).
const maxHighlight = 64 << 10

// langName is the language names a code block's class may carry.
var langName = regexp.MustCompile(`^[\w+#.-]{1,40}$`)

// highlighter renders fenced code blocks with chroma: spans with short
// classes (kd, s, c1, ...), never inline styles, so that the strict CSP holds;
// chat.css colours the classes for the light and the dark theme. A block in
// an unknown language, or none, is shown plain.
type highlighter struct {
	formatter *chromahtml.Formatter
}

func newHighlighter() *highlighter {
	return &highlighter{formatter: chromahtml.New(chromahtml.WithClasses(true), chromahtml.PreventSurroundingPre(true))}
}

// RegisterFuncs renders fenced code blocks in place of goldmark's own renderer.
func (h *highlighter) RegisterFuncs(reg renderer.NodeRendererFuncRegisterer) {
	reg.Register(ast.KindFencedCodeBlock, h.fenced)
}

func (h *highlighter) fenced(w util.BufWriter, source []byte, node ast.Node, entering bool) (ast.WalkStatus, error) {
	if !entering {
		return ast.WalkContinue, nil
	}
	n := node.(*ast.FencedCodeBlock)
	var code bytes.Buffer
	for i := range n.Lines().Len() {
		seg := n.Lines().At(i)
		code.Write(seg.Value(source))
	}
	lang := string(n.Language(source))
	if !langName.MatchString(lang) {
		lang = ""
	}
	_, _ = w.WriteString(`<pre class="chroma"><code`)
	if lang != "" {
		_, _ = w.WriteString(` class="language-` + html.EscapeString(lang) + `"`)
	}
	_, _ = w.WriteString(`>`)
	if !h.highlight(w, lang, code.String()) {
		_, _ = w.WriteString(html.EscapeString(code.String()))
	}
	_, _ = w.WriteString("</code></pre>\n")
	return ast.WalkSkipChildren, nil
}

// highlight writes code's highlighted spans; false when it wrote nothing
// (no lexer for lang, code too long, or chroma failed before writing).
func (h *highlighter) highlight(w util.BufWriter, lang, code string) bool {
	if lang == "" || len(code) > maxHighlight {
		return false
	}
	lexer := lexers.Get(lang)
	if lexer == nil {
		return false
	}
	it, err := chroma.Coalesce(lexer).Tokenise(nil, code)
	if err != nil {
		return false
	}
	var buf bytes.Buffer
	if err := h.formatter.Format(&buf, styles.Fallback, it); err != nil {
		return false
	}
	_, _ = w.Write(buf.Bytes())
	return true
}
