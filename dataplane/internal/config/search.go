package config

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// Search configures POST /v1/search and the MCP web_search tool. It is a
// data-plane setting: every replica behind one load balancer must be given the
// same values (the replicas are stateless and interchangeable).
type Search struct {
	// Provider is "brave", "searxng" or empty (web search off: 503).
	Provider string
	// URL is Brave's endpoint (default the public API) or the SearXNG
	// instance's base URL (required).
	URL string
	// APIKey is the provider's key (Brave's subscription token; for SearXNG an
	// optional Bearer token); set it or APIKeyFile. Never logged.
	APIKey     string
	APIKeyFile string
	// MaxResults is the result count of a request that gives none (1..50).
	MaxResults int
	// Charge is the tokens one search debits from the user's quota.
	Charge int64
	// Timeout bounds one provider call.
	Timeout time.Duration
}

func defaultSearch() Search {
	return Search{MaxResults: 10, Charge: 50, Timeout: 15 * time.Second}
}

func (c *Config) searchSettings() []setting {
	s := &c.Search
	return []setting{
		{"search-provider", "web search `provider`: brave, searxng, or empty for none (/v1/search answers 503)", (*stringValue)(&s.Provider)},
		{"search-url", "the provider's `URL`: Brave's web search endpoint (default https://api.search.brave.com/res/v1/web/search) or the SearXNG instance's base URL (required for searxng)", (*stringValue)(&s.URL)},
		{"search-api-key", "the provider's API `key` (Brave: X-Subscription-Token; SearXNG: optional Bearer token); prefer -search-api-key-file", (*secretValue)(&s.APIKey)},
		{"search-api-key-file", "`file` holding the provider's API key", (*stringValue)(&s.APIKeyFile)},
		{"search-max-results", "result `count` of a search that asks for none (1..50)", (*intValue)(&s.MaxResults)},
		{"search-charge-tokens", "`tokens` one web search debits from the user's quota", (*int64Value)(&s.Charge)},
		{"search-timeout", "longest wait for the search provider; a `duration`", (*durationValue)(&s.Timeout)},
	}
}

type int64Value int64

func (v *int64Value) String() string { return fmt.Sprint(int64(*v)) }
func (v *int64Value) Set(s string) error {
	var n int64
	if _, err := fmt.Sscan(strings.TrimSpace(s), &n); err != nil {
		return fmt.Errorf("not an integer")
	}
	*v = int64Value(n)
	return nil
}

func (s Search) validate() []error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	switch s.Provider {
	case "", "brave":
	case "searxng":
		if s.URL == "" {
			bad("--search-provider searxng needs --search-url, the instance's base URL (e.g. http://searxng:8080)")
		}
	default:
		bad("--search-provider %q is not brave, searxng or empty", s.Provider)
	}
	if s.Provider == "brave" && s.APIKey == "" && s.APIKeyFile == "" {
		bad("--search-provider brave needs its subscription token: set MINDROUTER_DP_SEARCH_API_KEY_FILE (or --search-api-key-file)")
	}
	if s.APIKey != "" && s.APIKeyFile != "" {
		bad("set the search API key or the search API key file, not both")
	}
	if s.MaxResults < 1 || s.MaxResults > 50 {
		bad("--search-max-results %d is not between 1 and 50", s.MaxResults)
	}
	if s.Charge < 0 {
		bad("--search-charge-tokens must not be negative")
	}
	if s.Timeout <= 0 {
		bad("--search-timeout must be positive")
	}
	return errs
}

// Key returns the provider's API key, read from APIKeyFile when that is set.
func (s Search) Key() (string, error) {
	if s.APIKeyFile == "" {
		return s.APIKey, nil
	}
	b, err := os.ReadFile(s.APIKeyFile)
	if err != nil {
		return "", fmt.Errorf("read the search API key file (--search-api-key-file): %w", err)
	}
	k := strings.TrimSpace(string(b))
	if k == "" {
		return "", fmt.Errorf("the search API key file %q is empty", s.APIKeyFile)
	}
	return k, nil
}
