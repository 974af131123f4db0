package canonical_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
)

type wire struct {
	Model    string   `json:"model"`
	Messages []string `json:"messages"`
}

func TestDecodeErrorShowsNoGoWording(t *testing.T) {
	t.Parallel()
	tests := []struct{ body, want, param string }{
		{`[1,2]`, "request body must be a JSON object", ""},
		{`"x"`, "request body must be a JSON object", ""},
		{`{"model":1}`, `invalid type for "model": got number`, "model"},
		{`{"messages":"hi"}`, `invalid type for "messages": got string`, "messages"},
		{`{"model":`, "invalid JSON body at byte 9: unexpected end of JSON input", ""},
		{`{model}`, "invalid JSON body at byte 2: invalid character 'm' looking for beginning of object key string", ""},
	}
	for _, tc := range tests {
		var w wire
		err := json.Unmarshal([]byte(tc.body), &w)
		require.Error(t, err, tc.body)
		ce := canonical.DecodeError(err)
		require.Equal(t, canonical.KindInvalidRequest, ce.Kind)
		require.Equal(t, tc.want, ce.Message, tc.body)
		require.Equal(t, tc.param, ce.Param)
		require.NotContains(t, ce.Message, "Go value")
		require.NotContains(t, ce.Message, "canonical_test")
	}
}

func TestCheckJSONBody(t *testing.T) {
	t.Parallel()
	body := []byte(`{"model":"m"}`)
	for _, ct := range []string{"", "application/json", "application/json; charset=utf-8", "application/x-www-form-urlencoded", "application/vnd.api+json"} {
		r, _ := http.NewRequest(http.MethodPost, "/", nil)
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		require.Nil(t, canonical.CheckJSONBody(r, body), ct)
	}
	for _, ct := range []string{"text/plain", "multipart/form-data; boundary=x", "application/xml", "garbage;;"} {
		r, _ := http.NewRequest(http.MethodPost, "/", nil)
		r.Header.Set("Content-Type", ct)
		ce := canonical.CheckJSONBody(r, body)
		require.NotNil(t, ce, ct)
		require.Equal(t, http.StatusUnsupportedMediaType, ce.Status)
		require.Contains(t, ce.Message, "application/json")
	}
	r, _ := http.NewRequest(http.MethodPost, "/", nil)
	ce := canonical.CheckJSONBody(r, []byte("{\"model\":\"\xff\"}"))
	require.NotNil(t, ce)
	require.Equal(t, "request body is not valid UTF-8", ce.Message)
}
