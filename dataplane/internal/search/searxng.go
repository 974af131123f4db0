package search

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// SearXNG queries a SearXNG instance's JSON API (GET /search?q=&format=json;
// the instance must allow the json format). APIKey, when set, is sent as a
// Bearer token for instances behind an authenticating proxy.
type SearXNG struct {
	// URL is the instance's base URL, e.g. http://searxng:8080.
	URL    string
	APIKey string
	Client *http.Client
}

// Name is "searxng".
func (s *SearXNG) Name() string { return "searxng" }

type searxngResponse struct {
	Results []struct {
		Title         string  `json:"title"`
		URL           string  `json:"url"`
		Content       string  `json:"content"`
		PublishedDate *string `json:"publishedDate"`
		Engine        string  `json:"engine"`
	} `json:"results"`
}

// Search runs the query.
func (s *SearXNG) Search(ctx context.Context, query string, limit int) ([]Result, error) {
	u, err := url.Parse(strings.TrimSuffix(s.URL, "/") + "/search")
	if err != nil {
		return nil, &ProviderError{Provider: s.Name(), Err: fmt.Errorf("endpoint: %w", err)}
	}
	q := u.Query()
	q.Set("q", query)
	q.Set("format", "json")
	q.Set("pageno", "1")
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, &ProviderError{Provider: s.Name(), Err: err}
	}
	req.Header.Set("Accept", "application/json")
	if s.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+s.APIKey)
	}
	body, err := get(ctx, s.Client, s.Name(), req)
	if err != nil {
		return nil, err
	}
	var sr searxngResponse
	if err := json.Unmarshal(body, &sr); err != nil {
		return nil, &ProviderError{Provider: s.Name(), Err: fmt.Errorf("decode answer: %w", err)}
	}
	out := make([]Result, 0, min(len(sr.Results), limit))
	for _, r := range sr.Results {
		if len(out) == limit {
			break
		}
		var published string
		if r.PublishedDate != nil {
			published = *r.PublishedDate
		}
		src := r.Engine
		if src == "" {
			src = s.Name()
		}
		out = append(out, Result{Title: r.Title, URL: r.URL, Snippet: r.Content, Published: published, Source: src})
	}
	return out, nil
}
