package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// queueComment is one ": queue position=N eta_ms=M" comment of a stream.
type queueComment struct {
	position int
	eta      time.Duration
}

// queuedStream is what a plain HTTP client saw of a streamed chat completion.
type queuedStream struct {
	header   int // X-Mindrouter-Queue-Position, 0 when absent
	comments []queueComment
	// commentsBeforeData is false when a queue comment followed an answer event.
	commentsBeforeData bool
	events             int
	done               bool
}

// streamQueued sends a streamed chat completion of u and reads its raw stream.
func (r *fairRig) streamQueued(ctx context.Context, u fairUser) queuedStream {
	r.t.Helper()
	raw, _ := json.Marshal(map[string]any{"model": r.model, "stream": true, "max_tokens": 16,
		"messages": []map[string]string{{"role": "user", "content": "am I next?"}}})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.c.DataPlaneURL+"/v1/chat/completions", bytes.NewReader(raw))
	require.NoError(r.t, err)
	req.Header.Set("Authorization", "Bearer "+u.key)
	resp, err := r.http.Do(req)
	require.NoError(r.t, err)
	defer resp.Body.Close()
	require.Equal(r.t, http.StatusOK, resp.StatusCode)
	out := queuedStream{commentsBeforeData: true}
	out.header, _ = strconv.Atoi(resp.Header.Get("X-Mindrouter-Queue-Position"))
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if c, ok := strings.CutPrefix(line, ": queue "); ok {
			var qc queueComment
			var ms int64
			_, err := fmt.Sscanf(c, "position=%d eta_ms=%d", &qc.position, &ms)
			require.NoError(r.t, err, "comment %q", line)
			qc.eta = time.Duration(ms) * time.Millisecond
			out.comments = append(out.comments, qc)
			out.commentsBeforeData = out.commentsBeforeData && out.events == 0
			continue
		}
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			if data == "[DONE]" {
				out.done = true
				continue
			}
			out.events++
		}
	}
	require.NoError(r.t, sc.Err())
	return out
}

// TestQueuePositionLive: a streamed request that waits behind a saturating
// user hears its place in the queue before its answer — the early header and
// SSE comments on the raw stream with a falling position, and the same header
// through openai-go, whose stream reader skips the comments.
func TestQueuePositionLive(t *testing.T) {
	t.Parallel()
	cfg := fairSim()
	cfg.InterTokenDelay = 2 * time.Millisecond // 150 tokens: about 300 ms a request
	// FIFO keeps the probe behind every batch request queued before it, so its
	// position can only fall; fair share would let the new user jump ahead.
	r := startFairRig(t, cfg, 1, "-scheduler", "fifo")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	batch := r.user("qp-batch", "faculty", 0)
	probe := r.user("qp-probe", "student", 0)

	loops, stopLoops := context.WithCancel(ctx)
	var wg sync.WaitGroup
	t0 := time.Now()
	r.closedLoop(loops, &wg, batch, 6, t0, t0.Add(time.Minute), func(int) int { return 150 }, true, 0)
	defer func() { stopLoops(); wg.Wait() }()
	time.Sleep(time.Second) // one in flight, five waiting

	s := r.streamQueued(ctx, probe)
	t.Logf("raw stream: header position %d, comments %+v, %d events", s.header, s.comments, s.events)
	require.GreaterOrEqual(t, s.header, 2, "the probe waited behind the batch user's queued requests")
	require.GreaterOrEqual(t, len(s.comments), 2, "one comment when queued, more as the queue moved")
	assert.Equal(t, s.header, s.comments[0].position, "the header is the first update")
	for i := 1; i < len(s.comments); i++ {
		assert.Less(t, s.comments[i].position, s.comments[i-1].position, "a comment is sent only on change, and FIFO only moves forward")
	}
	assert.Positive(t, s.comments[0].eta, "the batch user's releases taught the scheduler the hold time")
	assert.True(t, s.commentsBeforeData, "queue comments come before the answer")
	assert.Positive(t, s.events)
	assert.True(t, s.done)

	var hr *http.Response
	client := openaiClient(r.c, probe.key)
	st := client.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
		Model: r.model, Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("am I next?")},
		MaxTokens: openai.Int(16),
	}, option.WithResponseInto(&hr))
	var text strings.Builder
	for st.Next() {
		for _, ch := range st.Current().Choices {
			text.WriteString(ch.Delta.Content)
		}
	}
	require.NoError(t, st.Err(), r.c.Logs())
	assert.NotEmpty(t, text.String(), "the SDK reads the answer past the queue comments")
	require.NotNil(t, hr)
	pos, err := strconv.Atoi(hr.Header.Get("X-Mindrouter-Queue-Position"))
	require.NoError(t, err, "openai-go exposes the early header")
	assert.GreaterOrEqual(t, pos, 2)
}
