package search

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// DefaultBraveURL is Brave Search API's web search endpoint.
const DefaultBraveURL = "https://api.search.brave.com/res/v1/web/search"

// braveMaxCount is the most results Brave returns for one request.
const braveMaxCount = 20

// Brave queries the Brave Search API (GET ?q=&count=, the key in
// X-Subscription-Token).
type Brave struct {
	URL    string
	APIKey string
	Client *http.Client
}

// Name is "brave".
func (b *Brave) Name() string { return "brave" }

// braveResponse is the part of Brave's web search answer that is used.
type braveResponse struct {
	Web struct {
		Results []struct {
			Title       string `json:"title"`
			URL         string `json:"url"`
			Description string `json:"description"`
			Age         string `json:"age"`
			PageAge     string `json:"page_age"`
		} `json:"results"`
	} `json:"web"`
}

// Search runs the query.
func (b *Brave) Search(ctx context.Context, query string, limit int) ([]Result, error) {
	u, err := url.Parse(b.URL)
	if err != nil {
		return nil, &ProviderError{Provider: b.Name(), Err: fmt.Errorf("endpoint: %w", err)}
	}
	q := u.Query()
	q.Set("q", query)
	q.Set("count", strconv.Itoa(min(limit, braveMaxCount)))
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, &ProviderError{Provider: b.Name(), Err: err}
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-Subscription-Token", b.APIKey)
	body, err := get(ctx, b.Client, b.Name(), req)
	if err != nil {
		return nil, err
	}
	var br braveResponse
	if err := json.Unmarshal(body, &br); err != nil {
		return nil, &ProviderError{Provider: b.Name(), Err: fmt.Errorf("decode answer: %w", err)}
	}
	out := make([]Result, 0, min(len(br.Web.Results), limit))
	for _, r := range br.Web.Results {
		if len(out) == limit {
			break
		}
		published := r.PageAge
		if published == "" {
			published = r.Age
		}
		out = append(out, Result{Title: r.Title, URL: r.URL, Snippet: r.Description, Published: published, Source: b.Name()})
	}
	return out, nil
}
