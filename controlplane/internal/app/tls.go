package app

import (
	"crypto/tls"
	"fmt"
	"net"

	"github.com/mindrouter/mindrouter/controlplane/internal/config"
	"github.com/mindrouter/mindrouter/tlsfiles"
)

// secureListeners wraps the listeners in TLS where the configuration names
// certificates: the gRPC port (mutual TLS with -tls-client-ca-file) and the
// REST port. The certificate files are re-read when they change. Plaintext
// stays the default.
func secureListeners(cfg config.Config, grpcLis, restLis net.Listener) (net.Listener, net.Listener, error) {
	if cfg.TLSCertFile != "" {
		src, err := tlsfiles.Load(tlsfiles.Files{CertFile: cfg.TLSCertFile, KeyFile: cfg.TLSKeyFile, CAFile: cfg.TLSClientCAFile})
		if err != nil {
			return grpcLis, restLis, fmt.Errorf("gRPC TLS: %w", err)
		}
		tc, err := src.ServerConfig("h2")
		if err != nil {
			return grpcLis, restLis, fmt.Errorf("gRPC TLS: %w", err)
		}
		grpcLis = tls.NewListener(grpcLis, tc)
	}
	if cfg.RESTTLSCertFile != "" {
		src, err := tlsfiles.Load(tlsfiles.Files{CertFile: cfg.RESTTLSCertFile, KeyFile: cfg.RESTTLSKeyFile})
		if err != nil {
			return grpcLis, restLis, fmt.Errorf("REST TLS: %w", err)
		}
		tc, err := src.ServerConfig("h2", "http/1.1")
		if err != nil {
			return grpcLis, restLis, fmt.Errorf("REST TLS: %w", err)
		}
		restLis = tls.NewListener(restLis, tc)
	}
	return grpcLis, restLis, nil
}

// tlsMode names a port's security for the start-up log.
func tlsMode(certFile, clientCAFile string) string {
	switch {
	case certFile == "":
		return "off"
	case clientCAFile != "":
		return "mutual"
	}
	return "on"
}
