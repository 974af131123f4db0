// Package ctl is mindrouterctl: the admin command line over the control plane's
// gRPC API. Commands are declared as table rows (resource, verb, gRPC method,
// what to print); their flags are derived from each request message, so a
// field added to a request is a flag at once. Output is a table, JSON (proto3
// JSON with the proto's names, as the REST API answers) or YAML. Address, key
// and TLS come from flags, MINDROUTER_* environment variables or a config file,
// in that order. It never prints the API key it was given.
package ctl
