package reasoning_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/reasoning"
)

var cases = []struct {
	name, in, reasoning, content string
}{
	{"leading block", "<think>Seventeen times 23</think>\n\nIt is 391.", "Seventeen times 23", "It is 391."},
	{"whitespace around everything", "  \n<think>\n step one \n step two\n</think>  It is.", "step one \n step two", "It is."},
	{"no block", "It is 391.", "", "It is 391."},
	{"block later is the answer", "Use <think>tags</think> like this.", "", "Use <think>tags</think> like this."},
	{"similar tag", "<thinking>no</thinking>", "", "<thinking>no</thinking>"},
	{"lone angle bracket", "<b>bold</b>", "", "<b>bold</b>"},
	{"unterminated block", "<think>cut off while thinking", "cut off while thinking", ""},
	{"empty block", "<think></think>Answer", "", "Answer"},
	{"partial open tag only", "<th", "", "<th"},
	{"whitespace only", " \n ", "", " \n "},
	{"empty", "", "", ""},
	{"close tag inside reasoning text", "<think>a </thin b</think>c", "a </thin b", "c"},
	{"second block stays content", "<think>a</think>b<think>c</think>", "a", "b<think>c</think>"},
	{"inner whitespace kept", "<think>a \n b</think> c", "a \n b", "c"},
	{"partial close tag then a space", "<think></thin 0</think>x", "</thin 0", "x"},
	{"unicode", "<think>día ☃</think>ñ", "día ☃", "ñ"},
}

// stream pushes the pieces of in cut at the given offsets.
func stream(in string, cuts ...int) (string, string) {
	var s reasoning.Splitter
	var r, c string
	prev := 0
	for _, cut := range append(cuts, len(in)) {
		pr, pc := s.Push(in[prev:cut])
		r, c = r+pr, c+pc
		prev = cut
	}
	pr, pc := s.Flush()
	return r + pr, c + pc
}

func TestSplit(t *testing.T) {
	t.Parallel()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, c, ok := reasoning.Split(tc.in)
			require.Equal(t, tc.reasoning, r)
			require.Equal(t, tc.content, c)
			require.Equal(t, ok, tc.content != tc.in || tc.reasoning != "")
		})
	}
}

// TestSplitterEverySplitPoint cuts every case at every byte offset, and at
// every pair of offsets, and byte by byte: the result never depends on where
// the chunks were cut.
func TestSplitterEverySplitPoint(t *testing.T) {
	t.Parallel()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for i := 0; i <= len(tc.in); i++ {
				r, c := stream(tc.in, i)
				require.Equal(t, tc.reasoning, r, "cut at %d", i)
				require.Equal(t, tc.content, c, "cut at %d", i)
				for j := i; j <= len(tc.in); j++ {
					r, c := stream(tc.in, i, j)
					require.Equal(t, tc.reasoning, r, "cut at %d and %d", i, j)
					require.Equal(t, tc.content, c, "cut at %d and %d", i, j)
				}
			}
			var every []int
			for i := 1; i < len(tc.in); i++ {
				every = append(every, i)
			}
			r, c := stream(tc.in, every...)
			require.Equal(t, tc.reasoning, r, "byte by byte")
			require.Equal(t, tc.content, c, "byte by byte")
		})
	}
}

// TestSplitterReleasesEarly: text is held back only while it may still be a
// tag or whitespace before one; the rest streams at once.
func TestSplitterReleasesEarly(t *testing.T) {
	t.Parallel()
	var s reasoning.Splitter
	r, c := s.Push("<think>")
	require.Empty(t, r+c)
	require.True(t, s.Active())
	r, _ = s.Push("thinking hard </th")
	require.Equal(t, "thinking hard", r, "the partial close tag and the space before it wait")
	r, _ = s.Push("ey said")
	require.Equal(t, " </they said", r, "not a close tag after all")
	r, c = s.Push("</think>\n\nHi")
	require.Empty(t, r)
	require.Equal(t, "Hi", c)
	require.False(t, s.Active())
	_, c = s.Push(" <think>")
	require.Equal(t, " <think>", c, "after the block everything is content")

	var p reasoning.Splitter
	_, c = p.Push("Hello")
	require.Equal(t, "Hello", c, "an answer without a block is not delayed")
}

func FuzzSplitter(f *testing.F) {
	for _, tc := range cases {
		f.Add(tc.in, uint16(3), uint16(7))
	}
	f.Fuzz(func(t *testing.T, in string, a, b uint16) {
		i, j := int(a)%(len(in)+1), int(b)%(len(in)+1)
		if i > j {
			i, j = j, i
		}
		r, c := stream(in, i, j)
		wr, wc, ok := reasoning.Split(in)
		if r != wr || c != wc {
			t.Fatalf("cut at %d,%d: got (%q, %q), whole text gives (%q, %q)", i, j, r, c, wr, wc)
		}
		if !ok && (r != "" || c != in) {
			t.Fatalf("text without a leading block changed: (%q, %q)", r, c)
		}
		if len(r)+len(c) > len(in) {
			t.Fatal("output longer than input")
		}
	})
}
