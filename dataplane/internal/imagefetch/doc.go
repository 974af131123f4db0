// Package imagefetch fetches images that clients give by http(s) URL, so that
// every engine gets them inline: Ollama takes only base64, and letting vLLM
// fetch them would hand the SSRF problem to the GPU server (which sits inside
// the cluster network, next to other backends and cloud metadata services).
//
// The fetcher is an SSRF guard first: every connection's address is checked
// when it is dialled (after DNS resolution, so a name that resolves to a
// private address, or that changes its answer between a check and the dial,
// is still refused), redirects are followed only to http(s) and re-checked at
// their dial, the environment's proxy is never used, and loopback, private
// (RFC 1918, ULA), link-local (including 169.254.169.254), CGNAT,
// unspecified, multicast, broadcast and reserved addresses are refused unless
// the operator allow-lists the CIDR or host name. Bodies are bounded in size
// and time and must be images.
//
// It must not log URLs or image bytes (they are prompt content), and it knows
// nothing about dialects or engines.
package imagefetch
