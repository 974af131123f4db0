// Package relay runs one inference request from admission to release,
// whatever dialect the client speaks: it estimates the prompt's tokens, asks
// the control plane for a lease, dispatches to the lease's engine, delivers the
// answer to the surface, retries on another backend when a backend fails before
// anything reached the client, and settles every lease exactly once with the
// outcome and the usage (the engine's exact numbers, or an estimate marked as
// one). It runs chat (Chat, ChatStream) and the non-chat operations (Embed,
// Rerank, Score) the same way.
//
// Cross-cutting chat features live here so that every dialect gets them:
// images given by URL are fetched behind the SSRF guard (after admission, so
// only a valid key makes the gateway fetch), a leading <think> block in an
// answer becomes reasoning (streamed too), and a non-streamed answer that
// breaks the requested structured output is refused as KindUnprocessable.
//
// It defines the control plane as the data plane sees it (controlplane.go:
// Admitter, Catalog, Lease, Release, ModelInfo, Reason and the enumerations);
// cpclient implements those ports over gRPC.
//
// It must not parse or write any client dialect (surfaces do), speak any
// backend's API (engines do) or talk gRPC (cpclient does).
package relay
