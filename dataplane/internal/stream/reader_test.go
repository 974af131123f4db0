package stream_test

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/stream"
)

type event struct{ name, id, data string }

func readEvents(t *testing.T, r *stream.SSEReader) ([]event, error) {
	t.Helper()
	var out []event
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, event{ev.Name, ev.ID, string(ev.Data)})
	}
}

func TestSSEReader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want []event
	}{
		{"vllm stream", "data: {\"a\":1}\n\ndata: [DONE]\n\n", []event{{data: `{"a":1}`}, {data: "[DONE]"}}},
		{"crlf", "data: x\r\n\r\ndata: y\r\n\r\n", []event{{data: "x"}, {data: "y"}}},
		{"multi-line data joins with newline", "data: a\ndata: b\n\n", []event{{data: "a\nb"}}},
		{"comments and retry skipped", ": ping\nretry: 10\ndata: x\n\n", []event{{data: "x"}}},
		{"named event with id", "event: message_start\nid: 7\ndata: {}\n\n", []event{{"message_start", "7", "{}"}}},
		{"no space after colon", "data:x\n\n", []event{{data: "x"}}},
		{"event without data is skipped", "event: ping\n\ndata: x\n\n", []event{{data: "x"}}},
		{"last event without blank line", "data: x\n\ndata: y\n", []event{{data: "x"}, {data: "y"}}},
		{"unterminated last line", "data: x", []event{{data: "x"}}},
		{"empty", "", nil},
		{"blank lines only", "\n\n\n", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// One byte at a time exercises every buffer boundary.
			got, err := readEvents(t, stream.NewSSEReader(iotest.OneByteReader(strings.NewReader(tc.in)), 0))
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestSSEReaderLimits(t *testing.T) {
	t.Parallel()
	long := "data: " + strings.Repeat("x", 100) + "\n\n"
	_, err := readEvents(t, stream.NewSSEReader(strings.NewReader(long), 64))
	require.ErrorIs(t, err, stream.ErrTooLong)

	// Many data lines, each under the limit, still bound the event.
	many := strings.Repeat("data: "+strings.Repeat("y", 30)+"\n", 10) + "\n"
	_, err = readEvents(t, stream.NewSSEReader(strings.NewReader(many), 64))
	require.ErrorIs(t, err, stream.ErrTooLong)

	// A line longer than the internal buffer but under the limit is fine.
	big := strings.Repeat("z", 40<<10)
	got, err := readEvents(t, stream.NewSSEReader(strings.NewReader("data: "+big+"\n\n"), 1<<20))
	require.NoError(t, err)
	require.Equal(t, []event{{data: big}}, got)
}

func TestSSEReaderPassesReadErrors(t *testing.T) {
	t.Parallel()
	boom := errors.New("connection reset")
	r := stream.NewSSEReader(io.MultiReader(strings.NewReader("data: x\n\ndata: y"), iotest.ErrReader(boom)), 0)
	ev, err := r.Next()
	require.NoError(t, err)
	require.Equal(t, "x", string(ev.Data))
	_, err = r.Next()
	require.ErrorIs(t, err, boom)
}

func TestNDJSONReader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"lines", "{\"a\":1}\n{\"b\":2}\n", []string{`{"a":1}`, `{"b":2}`}},
		{"blank lines and crlf", "\n{\"a\":1}\r\n\r\n  \n{\"b\":2}", []string{`{"a":1}`, `{"b":2}`}},
		{"empty", "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := stream.NewNDJSONReader(iotest.OneByteReader(strings.NewReader(tc.in)), 0)
			var got []string
			for {
				line, err := r.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				require.NoError(t, err)
				got = append(got, string(line))
			}
			require.Equal(t, tc.want, got)
		})
	}
	_, err := stream.NewNDJSONReader(strings.NewReader(strings.Repeat("x", 200)+"\n"), 100).Next()
	require.ErrorIs(t, err, stream.ErrTooLong)
	_, err = stream.NewNDJSONReader(strings.NewReader(strings.Repeat("x", 200)), 100).Next()
	require.ErrorIs(t, err, stream.ErrTooLong)
}

func FuzzSSEReader(f *testing.F) {
	f.Add([]byte("data: {\"a\":1}\n\ndata: [DONE]\n\n"), 64)
	f.Add([]byte("event: x\r\nid: 1\r\ndata: a\r\ndata: b\r\n\r\n: c\n"), 8)
	f.Fuzz(func(t *testing.T, in []byte, limit int) {
		limit = 1 + abs(limit)%4096
		r := stream.NewSSEReader(strings.NewReader(string(in)), limit)
		for range len(in) + 1 {
			ev, err := r.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, stream.ErrTooLong) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if len(ev.Data) > limit {
				t.Fatalf("event of %d bytes over the limit %d", len(ev.Data), limit)
			}
		}
		t.Fatal("reader did not end")
	})
}

func FuzzNDJSONReader(f *testing.F) {
	f.Add([]byte("{\"model\":\"m\",\"done\":false}\n{\"done\":true}\n"), 64)
	f.Add([]byte("\r\n\n  x\r\n"), 2)
	f.Fuzz(func(t *testing.T, in []byte, limit int) {
		limit = 1 + abs(limit)%4096
		r := stream.NewNDJSONReader(strings.NewReader(string(in)), limit)
		for range len(in) + 1 {
			line, err := r.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, stream.ErrTooLong) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if len(line) == 0 || len(line) > limit || strings.ContainsAny(string(line), "\n") {
				t.Fatalf("bad line %q (limit %d)", line, limit)
			}
		}
		t.Fatal("reader did not end")
	})
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
