package search

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// Result is one normalised search hit.
type Result struct {
	Title   string `json:"title"`
	URL     string `json:"url"`
	Snippet string `json:"snippet"`
	// Published is the provider's date of the page, as it gave it; empty when
	// it gave none.
	Published string `json:"published,omitempty"`
	// Source is where the hit came from: the provider, or for SearXNG the
	// engine that found it.
	Source string `json:"source"`
}

// Provider runs a search.
type Provider interface {
	// Name is the provider's name, e.g. "brave".
	Name() string
	// Search returns at most limit results for query. Failures are
	// *ProviderError.
	Search(ctx context.Context, query string, limit int) ([]Result, error)
}

// ProviderError is a provider's failure, as the client hears of it.
type ProviderError struct {
	Provider string
	// Status is the provider's HTTP status; 0 when it sent none.
	Status int
	// RetryAfter is the provider's Retry-After, when it sent one.
	RetryAfter time.Duration
	// Timeout is true when the provider did not answer in time.
	Timeout bool
	Err     error
}

func (e *ProviderError) Error() string {
	switch {
	case e.Timeout:
		return fmt.Sprintf("search provider %s did not answer in time", e.Provider)
	case e.Status != 0:
		return fmt.Sprintf("search provider %s answered HTTP %d", e.Provider, e.Status)
	}
	return fmt.Sprintf("search provider %s failed: %v", e.Provider, e.Err)
}

func (e *ProviderError) Unwrap() error { return e.Err }

// maxProviderBody bounds what is read of a provider's answer.
const maxProviderBody = 4 << 20

// get sends an HTTP GET and returns the body of a 200 answer, or a
// *ProviderError.
func get(ctx context.Context, client *http.Client, provider string, req *http.Request) ([]byte, error) {
	resp, err := client.Do(req.WithContext(ctx))
	if err != nil {
		return nil, transportError(provider, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxProviderBody))
	if err != nil {
		return nil, transportError(provider, err)
	}
	if resp.StatusCode != http.StatusOK {
		pe := &ProviderError{Provider: provider, Status: resp.StatusCode}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			pe.RetryAfter = time.Duration(s) * time.Second
		}
		return nil, pe
	}
	return body, nil
}

func transportError(provider string, err error) error {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return &ProviderError{Provider: provider, Timeout: true, Err: err}
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	return &ProviderError{Provider: provider, Err: err}
}
