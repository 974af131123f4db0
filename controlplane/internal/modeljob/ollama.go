package modeljob

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// maxLine bounds one line of Ollama's pull stream (they are ~150 bytes).
const maxLine = 64 << 10

// pullLine is one line of Ollama's POST /api/pull stream.
type pullLine struct {
	Status    string `json:"status"`
	Digest    string `json:"digest"`
	Total     int64  `json:"total"`
	Completed int64  `json:"completed"`
	Error     string `json:"error"`
}

// parsePullLine decodes one line of the stream.
func parsePullLine(b []byte) (pullLine, error) {
	var l pullLine
	if err := json.Unmarshal(b, &l); err != nil {
		return pullLine{}, fmt.Errorf("unreadable line from Ollama: %w", err)
	}
	if l.Error == "" && l.Status == "" {
		return pullLine{}, errors.New("line from Ollama without status or error")
	}
	return l, nil
}

// ollamaError is an error Ollama answered with.
type ollamaError struct {
	code    int // HTTP status, 0 for an error line in the stream
	message string
}

func (e *ollamaError) Error() string {
	if e.code != 0 {
		return fmt.Sprintf("ollama answered %d: %s", e.code, e.message)
	}
	return "ollama: " + e.message
}

// permanent reports whether retrying cannot help: Ollama refused the request
// itself (a 4xx other than a timeout or throttling), or says the model does
// not exist or its name is invalid.
func permanent(err error) bool {
	var oe *ollamaError
	if !errors.As(err, &oe) {
		return false
	}
	if oe.code >= 400 && oe.code < 500 && oe.code != http.StatusRequestTimeout && oe.code != http.StatusTooManyRequests {
		return true
	}
	m := strings.ToLower(oe.message)
	return strings.Contains(m, "does not exist") || strings.Contains(m, "not found") ||
		strings.Contains(m, "invalid model name") || strings.Contains(m, "unauthorized")
}

// errorBody reads Ollama's {"error": "..."} answer, or the raw text.
func errorBody(resp *http.Response) *ollamaError {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	var e struct {
		Error string `json:"error"`
	}
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		msg = e.Error
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return &ollamaError{code: resp.StatusCode, message: msg}
}

// ollamaCall sends a JSON body to an Ollama endpoint.
func (r *Runner) ollamaCall(ctx context.Context, method, baseURL, path string, body any) (*http.Response, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(baseURL, "/")+path, bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.opts.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	return resp, nil
}

// pull makes one attempt at a pull, reporting progress through p and
// report. It returns nil once Ollama said success.
func (r *Runner) pull(ctx context.Context, baseURL string, model string, insecure bool, p *progress) error {
	// The read timeout bounds the silence between two lines, not the pull.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	idle := time.AfterFunc(r.opts.ReadTimeout, func() {
		cancel(fmt.Errorf("no progress from Ollama for %s", r.opts.ReadTimeout))
	})
	defer idle.Stop()
	resp, err := r.ollamaCall(ctx, http.MethodPost, baseURL, "/api/pull", map[string]any{"model": model, "stream": true, "insecure": insecure})
	if err != nil {
		return causeOr(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errorBody(resp)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 4<<10), maxLine)
	for sc.Scan() {
		idle.Reset(r.opts.ReadTimeout)
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		l, err := parsePullLine(sc.Bytes())
		if err != nil {
			return err
		}
		if l.Error != "" {
			return &ollamaError{message: l.Error}
		}
		p.line(ctx, l)
		if l.Status == "success" {
			return nil
		}
	}
	if err := sc.Err(); err != nil {
		return causeOr(ctx, fmt.Errorf("pull stream broke: %w", err))
	}
	return errors.New("pull stream ended before Ollama said success")
}

// remove makes one attempt at a delete. gone reports that Ollama has no such
// model.
func (r *Runner) remove(ctx context.Context, baseURL, model string) (gone bool, err error) {
	resp, err := r.ollamaCall(ctx, http.MethodDelete, baseURL, "/api/delete", map[string]any{"model": model})
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return false, nil
	case http.StatusNotFound:
		return true, errorBody(resp)
	}
	return false, errorBody(resp)
}

// causeOr returns why ctx ended when it did (the idle timeout), else err.
func causeOr(ctx context.Context, err error) error {
	if c := context.Cause(ctx); c != nil && !errors.Is(c, context.Canceled) {
		return c
	}
	return err
}
