package app

import (
	"crypto/tls"
	"fmt"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/mindrouter/mindrouter/dataplane/internal/config"
	"github.com/mindrouter/mindrouter/tlsfiles"
)

// controlPlaneCreds is the transport security of the connection to the
// control plane: TLS when a CA, client certificate or server name is
// configured (mutual with a client certificate), the files re-read when they
// change; plaintext otherwise (the cpclient default).
func controlPlaneCreds(cfg config.Config) (grpc.DialOption, error) {
	if cfg.ControlPlaneCAFile == "" && cfg.ControlPlaneCertFile == "" && cfg.ControlPlaneServerName == "" {
		return grpc.EmptyDialOption{}, nil
	}
	src, err := tlsfiles.Load(tlsfiles.Files{
		CertFile: cfg.ControlPlaneCertFile, KeyFile: cfg.ControlPlaneKeyFile, CAFile: cfg.ControlPlaneCAFile,
	})
	if err != nil {
		return nil, fmt.Errorf("control plane TLS: %w", err)
	}
	return grpc.WithTransportCredentials(credentials.NewTLS(src.ClientConfig(cfg.ControlPlaneServerName))), nil
}

// publicTLS wraps the public listener in TLS when a certificate is configured.
func publicTLS(cfg config.Config, ln net.Listener) (net.Listener, error) {
	if cfg.TLSCertFile == "" {
		return ln, nil
	}
	src, err := tlsfiles.Load(tlsfiles.Files{CertFile: cfg.TLSCertFile, KeyFile: cfg.TLSKeyFile})
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("public TLS: %w", err)
	}
	tc, err := src.ServerConfig("h2", "http/1.1")
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("public TLS: %w", err)
	}
	return tls.NewListener(ln, tc), nil
}
