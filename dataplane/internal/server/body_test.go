package server_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/server"
)

// slowClient opens a raw connection, sends head and then trickles body one
// byte every gap until the server answers or closes; it returns the answer
// and how many body bytes it managed to send.
func slowClient(t *testing.T, addr, head, body string, gap time.Duration) (*http.Response, int) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	_, err = io.WriteString(conn, head)
	require.NoError(t, err)
	sent := make(chan int, 1)
	go func() {
		n := 0
		for ; n < len(body); n++ {
			if _, err := conn.Write([]byte{body[n]}); err != nil {
				break
			}
			time.Sleep(gap)
		}
		sent <- n
	}()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(20*time.Second)))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	rest, _ := io.ReadAll(resp.Body) // ends because the server closes the connection
	resp.Body = io.NopCloser(strings.NewReader(string(rest)))
	_ = conn.Close()
	return resp, <-sent
}

func TestSlowBodyWithoutKeyIsRefusedAtOnce(t *testing.T) {
	t.Parallel()
	hs, _ := newServer(t, server.Options{BodyReadTimeout: time.Minute})
	body := `{"model":"m","messages":[{"role":"user","content":"` + strings.Repeat("x", 200) + `"}]}`
	head := "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
		"Content-Length: " + itoa(len(body)) + "\r\n\r\n"
	start := time.Now()
	resp, sent := slowClient(t, hs.Listener.Addr().String(), head, body, 50*time.Millisecond)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Equal(t, "missing_api_key", errorBody(t, resp)["code"])
	require.True(t, resp.Close, "the connection is closed, not drained")
	require.Less(t, sent, len(body), "the answer came before the body was sent")
	require.Less(t, time.Since(start), 5*time.Second)
}

func TestSlowBodyIsCutOff(t *testing.T) {
	t.Parallel()
	hs, _ := newServer(t, server.Options{BodyReadTimeout: 300 * time.Millisecond, BodyMinRate: 1 << 20})
	body := `{"model":"m","messages":[{"role":"user","content":"` + strings.Repeat("x", 200) + `"}]}`
	for _, te := range []string{"Content-Length: " + itoa(len(body)), "Transfer-Encoding: chunked"} {
		b := body
		if strings.HasPrefix(te, "Transfer") {
			b = "ff\r\n" + body // a chunk announced, never finished
		}
		head := "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n" + te + "\r\n\r\n"
		start := time.Now()
		resp, sent := slowClient(t, hs.Listener.Addr().String(), head, b, 20*time.Millisecond)
		took := time.Since(start)
		require.Equal(t, http.StatusRequestTimeout, resp.StatusCode, te)
		e := errorBody(t, resp)
		require.Equal(t, "body_timeout", e["code"], te)
		require.Contains(t, e["message"], "too slowly")
		require.True(t, resp.Close, te)
		require.Less(t, sent, len(b), te)
		// 300 ms plus one second for every MiB received: well under a second.
		require.Less(t, took, 3*time.Second, te)
	}
}

func TestBodyAtTheMinimumRateIsRead(t *testing.T) {
	t.Parallel()
	// 10 bytes a second may keep going past the 200 ms timeout: a body of ~75
	// bytes sent in ~1.5 s at ~50 bytes a second stays inside its allowance, with
	// room for a loaded machine's late timers (a client five times slower still
	// passes).
	hs, _ := newServer(t, server.Options{BodyReadTimeout: 200 * time.Millisecond, BodyMinRate: 10})
	body := `{"model":"m","messages":[{"role":"user","content":"slowly but surely"}]}`
	head := "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\nConnection: close\r\n" +
		"Content-Length: " + itoa(len(body)) + "\r\n\r\n"
	resp, sent := slowClient(t, hs.Listener.Addr().String(), head, body, 20*time.Millisecond)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, len(body), sent)
}

func itoa(n int) string { return strconv.Itoa(n) }
