package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// Files names PEM files. CertFile and KeyFile are this side's certificate
// (chain) and key; CAFile is the bundle that verifies the other side. Any may
// be empty: no certificate to present, or the system roots for verification
// (for a server: no client certificates asked for).
type Files struct {
	CertFile, KeyFile, CAFile string
}

// Source is the certificate and CA bundle of some Files, as they are now.
type Source struct {
	files Files

	mu     sync.Mutex
	stamps [3]stamp
	cert   *tls.Certificate
	pool   *x509.CertPool
	loads  int
	err    error
}

type stamp struct {
	size int64
	mod  time.Time
	// fi tells a file replaced by a rename (a new inode) from the one it
	// replaced even when both have the same size and a modification time
	// within the file system's clock tick.
	fi os.FileInfo
}

func unchanged(a, b [3]stamp) bool {
	for i := range a {
		if (a[i].fi == nil) != (b[i].fi == nil) || a[i].size != b[i].size || !a[i].mod.Equal(b[i].mod) ||
			(a[i].fi != nil && !os.SameFile(a[i].fi, b[i].fi)) {
			return false
		}
	}
	return true
}

// Load reads the files once; they must hold a matching certificate and key
// (both or neither) and, when named, at least one CA certificate.
func Load(f Files) (*Source, error) {
	if (f.CertFile == "") != (f.KeyFile == "") {
		return nil, errors.New("a TLS certificate file needs its key file, and a key file its certificate")
	}
	s := &Source{files: f}
	if _, _, err := s.current(); err != nil {
		return nil, err
	}
	return s, nil
}

// Loads counts how often the files were read successfully (the first time
// included): the rotations seen, plus one.
func (s *Source) Loads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loads
}

// current returns the material, re-reading the files when any of them changed.
// When re-reading fails, the previous material is returned (and the error
// kept for LastError); only the first load's failure is an error.
func (s *Source) current() (*tls.Certificate, *x509.CertPool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now, err := s.stat()
	if err == nil && unchanged(now, s.stamps) && s.loads > 0 {
		return s.cert, s.pool, nil
	}
	if err == nil {
		var cert *tls.Certificate
		var pool *x509.CertPool
		if cert, pool, err = s.read(); err == nil {
			s.cert, s.pool, s.stamps, s.err = cert, pool, now, nil
			s.loads++
			return s.cert, s.pool, nil
		}
	}
	s.err = err
	if s.loads == 0 {
		return nil, nil, err
	}
	return s.cert, s.pool, nil
}

// LastError is the failure of the most recent attempt to re-read the files,
// nil when it succeeded (the material in use is then the files' current one).
func (s *Source) LastError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *Source) stat() ([3]stamp, error) {
	var out [3]stamp
	for i, name := range []string{s.files.CertFile, s.files.KeyFile, s.files.CAFile} {
		if name == "" {
			continue
		}
		fi, err := os.Stat(name)
		if err != nil {
			return out, fmt.Errorf("tls: %w", err)
		}
		out[i] = stamp{size: fi.Size(), mod: fi.ModTime(), fi: fi}
	}
	return out, nil
}

func (s *Source) read() (*tls.Certificate, *x509.CertPool, error) {
	var cert *tls.Certificate
	if s.files.CertFile != "" {
		c, err := tls.LoadX509KeyPair(s.files.CertFile, s.files.KeyFile)
		if err != nil {
			return nil, nil, fmt.Errorf("tls: load %s and %s: %w", s.files.CertFile, s.files.KeyFile, err)
		}
		cert = &c
	}
	var pool *x509.CertPool
	if s.files.CAFile != "" {
		pem, err := os.ReadFile(s.files.CAFile)
		if err != nil {
			return nil, nil, fmt.Errorf("tls: %w", err)
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("tls: %s holds no PEM certificate", s.files.CAFile)
		}
	}
	return cert, pool, nil
}

// ServerConfig is a server's configuration: the certificate as the files hold
// it at each handshake and, when the Files name a CA, client certificates
// required and verified against it (mutual TLS). nextProtos are the ALPN
// protocols offered ("h2" for gRPC; "h2", "http/1.1" for HTTP).
func (s *Source) ServerConfig(nextProtos ...string) (*tls.Config, error) {
	if s.files.CertFile == "" {
		return nil, errors.New("a TLS server needs a certificate and key file")
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: nextProtos,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			cert, pool, err := s.current()
			if err != nil {
				return nil, err
			}
			c := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: nextProtos, Certificates: []tls.Certificate{*cert}}
			if pool != nil {
				c.ClientAuth, c.ClientCAs = tls.RequireAndVerifyClientCert, pool
			}
			return c, nil
		},
	}, nil
}

// ClientConfig is a client's configuration: the certificate as the files hold
// it at each handshake (when they name one), and the server verified against
// the CA file as it is at each handshake (the system roots when none), for
// serverName (the dialled host when empty).
func (s *Source) ClientConfig(serverName string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		ServerName: serverName,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			cert, _, err := s.current()
			if err != nil || cert == nil {
				return &tls.Certificate{}, err
			}
			return cert, nil
		},
		// The standard verification reads a fixed RootCAs; VerifyConnection does
		// the same verification against the CA file as it is now, so a rotated
		// CA is honoured without a restart. It never skips verification.
		InsecureSkipVerify: true, //nolint:gosec // verified in VerifyConnection
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, pool, err := s.current()
			if err != nil {
				return err
			}
			return verifyServer(cs, pool)
		},
	}
}

func verifyServer(cs tls.ConnectionState, roots *x509.CertPool) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("tls: the server presented no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: inter, DNSName: cs.ServerName,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return fmt.Errorf("tls: verify server certificate: %w", err)
	}
	return nil
}
