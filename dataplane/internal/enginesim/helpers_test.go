package enginesim_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
)

// start serves a new simulator over HTTP for the test.
func start(t *testing.T, cfg enginesim.Config) (*enginesim.Server, string) {
	t.Helper()
	s := enginesim.New(cfg)
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	return s, hs.URL
}

// post sends a JSON body (a string or a value to encode).
func post(t *testing.T, url string, body any) *http.Response {
	t.Helper()
	return postCtx(t, context.Background(), url, body)
}

func postCtx(t *testing.T, ctx context.Context, url string, body any) *http.Response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		require.NoError(t, err)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, rd)
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

func get(t *testing.T, url string) *http.Response {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

// decode reads a JSON body into a generic map.
func decode(t *testing.T, r io.Reader) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.NewDecoder(r).Decode(&m))
	return m
}

// ndjson reads all NDJSON objects of a body.
func ndjson(t *testing.T, r io.Reader) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m), "line %q", sc.Text())
		out = append(out, m)
	}
	require.NoError(t, sc.Err())
	return out
}

// sseEvents reads the data of all server-sent events of a body: decoded
// JSON objects, and whether the stream ended with "data: [DONE]".
func sseEvents(t *testing.T, r io.Reader) ([]map[string]any, bool) {
	t.Helper()
	raw, err := io.ReadAll(r)
	require.NoError(t, err)
	var out []map[string]any
	done := false
	for _, ev := range strings.Split(string(raw), "\n\n") {
		if strings.TrimSpace(ev) == "" {
			continue
		}
		require.False(t, done, "event after [DONE]: %q", ev)
		data, ok := strings.CutPrefix(ev, "data: ")
		require.True(t, ok, "event without data: %q", ev)
		if data == "[DONE]" {
			done = true
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(data), &m), "event %q", data)
		out = append(out, m)
	}
	return out, done
}

// keyPaths returns the set of key paths of a JSON value: "a.b", with "[]"
// for array elements. Children of paths in opaque are not listed.
func keyPaths(v any, opaque map[string]bool) map[string]bool {
	out := map[string]bool{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch t := v.(type) {
		case map[string]any:
			if opaque[prefix] {
				return
			}
			for k, c := range t {
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				out[p] = true
				walk(p, c)
			}
		case []any:
			for _, c := range t {
				walk(prefix+"[]", c)
			}
		}
	}
	walk("", v)
	return out
}

// signature renders a key path set as one sorted string.
func signature(paths map[string]bool) string {
	keys := make([]string, 0, len(paths))
	for k := range paths {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, " ")
}

// path walks a generic JSON value: keys for objects, ints for arrays.
func path(v any, steps ...any) any {
	for _, s := range steps {
		switch k := s.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			a, ok := v.([]any)
			if !ok || k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

func str(v any, steps ...any) string {
	s, _ := path(v, steps...).(string)
	return s
}

func num(v any, steps ...any) int {
	f, _ := path(v, steps...).(float64)
	return int(f)
}
