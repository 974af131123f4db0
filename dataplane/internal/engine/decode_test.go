package engine_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/engine"
)

// TestPostDecode: the answer is decoded; a refused answer is a retryable
// malformed answer; an error status keeps Post's contract (4xx not retryable,
// with the backend's message); the body goes out with its Content-Type.
func TestPostDecode(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		status, _ := strconv.Atoi(r.URL.Query().Get("status"))
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"ct":` + strconv.Quote(r.Header.Get("Content-Type")) + `,"body":` + strconv.Quote(string(b)) + `}`))
	}))
	t.Cleanup(srv.Close)
	decode := func(b []byte) (map[string]string, error) {
		var m map[string]string
		return m, json.Unmarshal(b, &m)
	}
	msg := func(b []byte) string { return "backend said " + string(b) }
	post := func(status int, decode func([]byte) (map[string]string, error)) (map[string]string, error) {
		return engine.PostDecode(t.Context(), srv.Client(), srv.URL+"/?status="+strconv.Itoa(status), "multipart/form-data; boundary=x",
			[]byte("hello"), msg, decode)
	}

	got, err := post(200, decode)
	require.NoError(t, err)
	require.Equal(t, map[string]string{"ct": "multipart/form-data; boundary=x", "body": "hello"}, got)

	_, err = post(200, func([]byte) (map[string]string, error) { return nil, errors.New("not the shape") })
	var ee *engine.Error
	require.ErrorAs(t, err, &ee)
	require.True(t, ee.Retryable, "another backend may answer properly")
	require.Equal(t, "malformed answer", ee.Message)
	require.ErrorContains(t, err, "not the shape")

	_, err = post(400, decode)
	require.ErrorAs(t, err, &ee)
	require.False(t, ee.Retryable)
	require.Equal(t, http.StatusBadRequest, ee.Status)
	require.Contains(t, ee.Message, "backend said")
}
