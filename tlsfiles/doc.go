// Package tlsfiles builds TLS configurations from certificate files that are
// read again whenever they change, so that certificates are rotated without a
// restart: every handshake checks the files' size, modification time and identity
// (one stat each; a file replaced by a rename is a new one) and re-reads them
// when any of these moved. A rotation caught half-way
// (a new certificate with the old key) fails to load and the previous
// material stays in use until the files agree again.
//
// It is the one piece of code the control plane, the data plane and the node
// agent share besides the protocol (etcd's client/pkg/transport plays the
// same part there), and it depends on the standard library only. It owns
// nothing but the files' contents; which files a process uses is its
// configuration's business.
package tlsfiles
