// Package mcp serves the gateway's Model Context Protocol server at /mcp
// (streamable HTTP, stateless: any replica answers any request) and /mcp/sse
// (the older SSE transport, whose session lives on the replica that holds the
// GET: behind a load balancer it needs sticky routing). Its tools are
// web_search, list_models and chat; every call is authenticated by the API key
// of the HTTP request (Authorization: Bearer, as /v1), and goes through the
// same admission, quota and audit path as the HTTP API (surface "mcp").
//
// It is built with the official github.com/modelcontextprotocol/go-sdk and
// must not log keys or prompt content.
package mcp
