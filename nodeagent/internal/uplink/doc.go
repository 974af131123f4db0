// Package uplink keeps one authenticated, long-lived TelemetryService.Stream open to the
// control plane and feeds it NodeSamples.
//
// It owns the sampling loop (one sample per interval; the interval in the control
// plane's Welcome overrides the local default), the one-slot mailbox between sampling
// and sending (while the control plane is away only the newest sample is kept and every
// replaced one is counted as dropped), and reconnection with exponential backoff and
// jitter. It authenticates with "x-mindrouter-node" and "authorization: Bearer <secret>"
// metadata on every stream.
//
// It must not read hardware itself (a Source does), dial the connection (the caller owns
// the grpc.ClientConn), or ever log the secret.
package uplink
