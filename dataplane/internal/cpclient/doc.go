// Package cpclient is the data plane's client of the control plane: Admit,
// Release and ListModels on AdmissionService, and the long-lived Session stream
// that proves the replica is alive, renews the leases it holds and receives the
// control plane's pushes (catalog changes, credential revocations).
//
// It owns the cluster-token metadata, the set of leases in flight, the cached
// catalogs, the background retry of releases that failed (so that usage is not
// lost when the control plane blips) and the translation of gRPC status errors
// into typed Errors carrying the refusal Reason and Retry-After. It converts
// between the generated protocol types and the relay's own (relay.AdmitRequest,
// Grant, Release, ModelInfo, Reason); the generated types go no further.
//
// It must not decide anything about a request (the relay does) and must not
// attach the cluster token to any call but its own: the admin REST gateway
// shares the connection but authenticates as the end user.
package cpclient
