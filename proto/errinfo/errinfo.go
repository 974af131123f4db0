// Package errinfo holds what the control plane and the data plane agree on about
// a refusal besides the generated messages: the google.rpc.ErrorInfo domain under
// which the control plane's Reason values travel. The server writes it and
// cpclient checks it, so the two can never drift apart.
package errinfo

// Domain is the google.rpc.ErrorInfo domain of every refusal the control plane sends.
const Domain = "mindrouter.dev"
