package tlsfiles_test

import (
	"crypto/tls"
	"io"
	"os"
	"testing"

	"github.com/mindrouter/mindrouter/tlsfiles"
	"github.com/mindrouter/mindrouter/tlsfiles/tlstest"
)

// serve accepts TLS connections with cfg, completes each handshake and writes
// the client certificate's common name ("-" without one), then closes.
func serve(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				tc := c.(*tls.Conn)
				if tc.Handshake() != nil {
					return
				}
				name := "-"
				if pc := tc.ConnectionState().PeerCertificates; len(pc) > 0 {
					name = pc[0].Subject.CommonName
				}
				_, _ = io.WriteString(c, name)
			}()
		}
	}()
	return ln.Addr().String()
}

// call dials addr with cfg and returns what the server wrote and the serial
// of the server's certificate.
func call(addr string, cfg *tls.Config) (string, string, error) {
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return "", "", err
	}
	defer c.Close()
	b, err := io.ReadAll(c)
	if err != nil {
		return "", "", err
	}
	if len(b) == 0 {
		return "", "", io.ErrUnexpectedEOF
	}
	return string(b), c.ConnectionState().PeerCertificates[0].SerialNumber.String(), nil
}

func load(t *testing.T, f tlsfiles.Files) *tlsfiles.Source {
	t.Helper()
	s, err := tlsfiles.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestMutualTLSHandshakeAndRotation: a client with a certificate of the
// server's client CA gets in; one without a certificate, or with one of
// another CA, is refused; a client that does not trust the server's CA
// refuses it. Replacing the server's certificate files, and then the client
// CA file, takes effect on the next handshake, without a restart.
func TestMutualTLSHandshakeAndRotation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "cluster")      // signs server certificates
	clients := tlstest.NewCA(t, dir, "clients") // signs client certificates
	other := tlstest.NewCA(t, dir, "other")
	srvPair := ca.Server(t, dir, "server")
	cli := clients.Client(t, dir, "dataplane")
	stranger := other.Client(t, dir, "stranger")

	srv := load(t, tlsfiles.Files{CertFile: srvPair.CertFile, KeyFile: srvPair.Key, CAFile: clients.File})
	scfg, err := srv.ServerConfig("h2")
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, scfg)

	client := load(t, tlsfiles.Files{CertFile: cli.CertFile, KeyFile: cli.Key, CAFile: ca.File})
	got, serial, err := call(addr, client.ClientConfig("localhost"))
	if err != nil || got != "dataplane" {
		t.Fatalf("mutual TLS: got %q, %v", got, err)
	}
	if serial != srvPair.Cert.SerialNumber.String() {
		t.Fatalf("server certificate serial %s, want %s", serial, srvPair.Cert.SerialNumber)
	}

	anonymous := load(t, tlsfiles.Files{CAFile: ca.File})
	if got, _, err := call(addr, anonymous.ClientConfig("localhost")); err == nil {
		t.Fatalf("a client without a certificate got in: %q", got)
	}
	foreign := load(t, tlsfiles.Files{CertFile: stranger.CertFile, KeyFile: stranger.Key, CAFile: ca.File})
	if got, _, err := call(addr, foreign.ClientConfig("localhost")); err == nil {
		t.Fatalf("a client of another CA got in: %q", got)
	}
	distrust := load(t, tlsfiles.Files{CertFile: cli.CertFile, KeyFile: cli.Key, CAFile: other.File})
	if _, _, err := call(addr, distrust.ClientConfig("localhost")); err == nil {
		t.Fatal("a client accepted a server its CA did not sign")
	}
	if _, _, err := call(addr, client.ClientConfig("wrong.example")); err == nil {
		t.Fatal("a client accepted a certificate for another name")
	}

	// Rotate the server's certificate: the next handshake presents the new one.
	rotated := ca.Server(t, dir, "server")
	_, serial, err = call(addr, client.ClientConfig("localhost"))
	if err != nil {
		t.Fatal(err)
	}
	if serial != rotated.Cert.SerialNumber.String() {
		t.Fatalf("after rotation the server presents serial %s, want the new %s", serial, rotated.Cert.SerialNumber)
	}
	if srv.Loads() != 2 {
		t.Fatalf("server files read %d times, want 2 (start and one rotation)", srv.Loads())
	}

	// Rotate the client CA: clients of the old one are refused from the next
	// handshake on, clients of the new one get in.
	clients2 := tlstest.NewCA(t, dir, "clients") // same file name: replaces clients.File
	if got, _, err := call(addr, client.ClientConfig("localhost")); err == nil {
		t.Fatalf("a client of the replaced CA still got in: %q", got)
	}
	fresh := clients2.Client(t, dir, "fresh")
	newClient := load(t, tlsfiles.Files{CertFile: fresh.CertFile, KeyFile: fresh.Key, CAFile: ca.File})
	if got, _, err := call(addr, newClient.ClientConfig("localhost")); err != nil || got != "fresh" {
		t.Fatalf("after rotating the client CA: got %q, %v", got, err)
	}

	// Rotate the server CA on the client's side: the client refuses the
	// server's certificate of the old CA until the server has one of the new.
	ca2 := tlstest.NewCA(t, dir, "cluster") // replaces ca.File, which newClient trusts
	if _, _, err := call(addr, newClient.ClientConfig("localhost")); err == nil {
		t.Fatal("the client trusted a server certificate of the replaced CA")
	}
	ca2.Server(t, dir, "server")
	if got, _, err := call(addr, newClient.ClientConfig("localhost")); err != nil || got != "fresh" {
		t.Fatalf("after rotating the server CA: got %q, %v", got, err)
	}
}

// TestHalfRotatedFilesKeepTheOldCertificate: a certificate whose key does not
// match yet (the certificate written, the key not) is not loaded; the server
// goes on presenting the previous one and LastError says why.
func TestHalfRotatedFilesKeepTheOldCertificate(t *testing.T) {
	t.Parallel()
	dir, other := t.TempDir(), t.TempDir()
	ca := tlstest.NewCA(t, dir, "cluster")
	first := ca.Server(t, dir, "server")
	srv := load(t, tlsfiles.Files{CertFile: first.CertFile, KeyFile: first.Key})
	scfg, err := srv.ServerConfig()
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, scfg)
	client := load(t, tlsfiles.Files{CAFile: ca.File})

	next := ca.Server(t, other, "server")
	copyFile(t, next.CertFile, first.CertFile) // the new certificate, the old key
	_, serial, err := call(addr, client.ClientConfig("localhost"))
	if err != nil {
		t.Fatal(err)
	}
	if serial != first.Cert.SerialNumber.String() {
		t.Fatalf("a mismatched pair was loaded: serial %s", serial)
	}
	if srv.LastError() == nil {
		t.Fatal("LastError is nil after a failed reload")
	}
	copyFile(t, next.Key, first.Key)
	_, serial, err = call(addr, client.ClientConfig("localhost"))
	if err != nil || serial != next.Cert.SerialNumber.String() {
		t.Fatalf("once the key matches the new certificate is served: serial %s, %v", serial, err)
	}
	if srv.LastError() != nil {
		t.Fatalf("LastError after a good reload: %v", srv.LastError())
	}
}

func TestLoadRefusesBadFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "cluster")
	p := ca.Server(t, dir, "server")
	for name, f := range map[string]tlsfiles.Files{
		"certificate without key": {CertFile: p.CertFile},
		"missing file":            {CertFile: p.CertFile, KeyFile: dir + "/nope.pem"},
		"key as CA":               {CAFile: p.Key},
		"key for certificate":     {CertFile: p.Key, KeyFile: p.Key},
	} {
		if _, err := tlsfiles.Load(f); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
	s := load(t, tlsfiles.Files{CAFile: ca.File})
	if _, err := s.ServerConfig(); err == nil {
		t.Error("a server configuration without a certificate")
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to+".tmp", b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(to+".tmp", to); err != nil {
		t.Fatal(err)
	}
}
