// Package search serves POST /v1/search: a web search run against the
// configured provider (Brave Search API or SearXNG's JSON API), with results
// normalised to one shape. A search holds no backend slot, but it goes through
// admission all the same (OPERATION_SEARCH: authentication, rate limit and a
// reservation of the configured token charge), is settled on release, and is
// recorded in the audit trail with the query as its request and the
// normalised results as its response.
//
// The package must not log the provider's API key or the query.
package search
