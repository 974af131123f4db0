// Package app is the data plane's composition root: it reads the
// configuration, wires the control-plane client, the engines, the relay, the
// surfaces and the HTTP server by hand, and runs them until the context ends,
// shutting down in the order that keeps usage accounted for. It holds no
// request logic.
package app
