package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// setting is one configurable field: its flag and a flag.Value writing into the
// Config. Its environment variable follows from the flag (EnvName).
type setting struct {
	flag, help string
	value      interface {
		String() string
		Set(string) error
	}
}

// settings lists every field; docs/configuration.md mirrors this table.
func (c *Config) settings() []setting {
	return append([]setting{
		{"listen", "HTTP listen `address`", (*stringValue)(&c.Listen)},
		{"controlplane-addr", "control plane gRPC `addresses`: host:port, or a comma-separated list of the leader and its standbys (the one that answers is the leader)", (*stringValue)(&c.ControlPlaneAddr)},
		{"controlplane-failover-wait", "with several -controlplane-addr, how long an admission waits for a leader while none answers (the request is held, not refused); a `duration`", (*durationValue)(&c.ControlPlaneFailoverWait)},
		{"cluster-token", "cluster `token` shared with the control plane", (*secretValue)(&c.ClusterToken)},
		{"cluster-token-file", "`file` holding the cluster token", (*stringValue)(&c.ClusterTokenFile)},
		{"tls-cert-file", "PEM certificate (chain) of the public HTTP port; with -tls-key-file it serves HTTPS (re-read when the file changes)", (*stringValue)(&c.TLSCertFile)},
		{"tls-key-file", "PEM private key of -tls-cert-file", (*stringValue)(&c.TLSKeyFile)},
		{"controlplane-ca-file", "PEM CA bundle: dial the control plane over TLS and verify it against this (re-read when it changes)", (*stringValue)(&c.ControlPlaneCAFile)},
		{"controlplane-cert-file", "PEM client certificate for a control plane that requires mutual TLS (implies TLS)", (*stringValue)(&c.ControlPlaneCertFile)},
		{"controlplane-key-file", "PEM private key of -controlplane-cert-file", (*stringValue)(&c.ControlPlaneKeyFile)},
		{"controlplane-server-name", "`name` to verify the control plane's certificate against instead of the address's host (implies TLS)", (*stringValue)(&c.ControlPlaneServerName)},
		{"replica-id", "this replica's `name` (default hostname plus a random suffix)", (*stringValue)(&c.ReplicaID)},
		{"max-body-bytes", "largest request body in `bytes` (a KiB/MiB/GiB suffix is allowed)", (*byteSize)(&c.MaxBodyBytes)},
		{"read-header-timeout", "longest wait for a request's headers; a `duration`", (*durationValue)(&c.ReadHeaderTimeout)},
		{"body-read-timeout", "longest wait for a request body, on top of what -body-min-rate allows a large one; a `duration`", (*durationValue)(&c.BodyReadTimeout)},
		{"body-min-rate", "slowest upload accepted once -body-read-timeout has passed, in `bytes` per second (a KiB/MiB suffix is allowed)", (*byteSize)(&c.BodyMinRate)},
		{"max-attempts", "`number` of backends a request may try before its first byte", (*intValue)(&c.MaxAttempts)},
		{"admit-timeout", "longest wait for admission, queueing included (0 = the control plane decides); a `duration`", (*durationValue)(&c.AdmitTimeout)},
		{"admit-transport", "how admissions reach the control plane: `session` (messages on the replica's session stream; the unary call while it is down or against an older control plane) or unary (one call each)", (*stringValue)(&c.AdmitTransport)},
		{"backend-dial-timeout", "longest wait to connect to a backend; a `duration`", (*durationValue)(&c.BackendDialTimeout)},
		{"backend-header-timeout", "longest wait for a backend's response headers; a `duration`", (*durationValue)(&c.BackendHeaderTimeout)},
		{"backend-idle-timeout", "longest silence inside a backend stream (0 = none); a `duration`", (*durationValue)(&c.BackendIdleTimeout)},
		{"release-timeout", "longest wait for one Release call; a `duration`", (*durationValue)(&c.ReleaseTimeout)},
		{"stream-write-timeout", "longest wait for one write to a streaming client (0 = none); a `duration`", (*durationValue)(&c.StreamWriteTimeout)},
		{"drain-delay", "at SIGTERM, how long to keep serving while /readyz answers 503, so that load balancers stop sending, before stopping to accept (0 = none); a `duration`", (*durationValue)(&c.DrainDelay)},
		{"shutdown-timeout", "how long streams in flight may finish at shutdown; a `duration`", (*durationValue)(&c.ShutdownTimeout)},
		{"release-drain-timeout", "at shutdown, after the streams, how long releases the control plane has not taken are still retried (then logged as unsettled; the control plane expires their leases); a `duration`", (*durationValue)(&c.ReleaseDrainTimeout)},
		{"image-fetch-allow", "comma-separated CIDRs, IPs and host `names` image URLs may reach although private, loopback or link-local (default none)", (*listValue)(&c.ImageFetchAllow)},
		{"image-fetch-max-bytes", "largest image fetched by URL in `bytes` (a KiB/MiB/GiB suffix is allowed)", (*byteSize)(&c.ImageFetchMaxBytes)},
		{"image-fetch-timeout", "longest fetch of one image URL; a `duration`", (*durationValue)(&c.ImageFetchTimeout)},
		{"keep-think-tags", "leave a leading <think> block in answers instead of moving it to the reasoning", (*boolValue)(&c.KeepThinkTags)},
		{"log-format", "log `format`: json or text", (*stringValue)(&c.LogFormat)},
		{"log-level", "log `level`: debug, info, warn or error", (*stringValue)(&c.LogLevel)},
		{"pprof-listen", "serve net/http/pprof on this `address` on a listener of its own (default empty = off); loopback only unless -pprof-allow-remote", (*stringValue)(&c.PprofListen)},
		{"secure-cookies", "mark the session cookie Secure even on plain HTTP (it is whenever the connection is TLS or X-Forwarded-Proto is https)", (*boolValue)(&c.SecureCookies)},
		{"audit", "record every request in the audit trail: on (the default) or off (nothing recorded, no spool, no stream; logged as a warning at startup; for measuring what the trail costs, or deployments that need none)", (*onOffValue)(&c.Audit)},
		{"audit-spool-dir", "`directory` of the audit spool kept while the control plane does not acknowledge records (default <tmp>/mindrouter-audit-<replica-id>)", (*stringValue)(&c.AuditSpoolDir)},
		{"audit-spool-max-bytes", "most `bytes` the audit spool holds (a KiB/MiB/GiB suffix is allowed)", (*byteSize)(&c.AuditSpoolMaxBytes)},
		{"audit-spool-full", "`policy` when the audit spool is full: fail-closed (refuse new inference requests with 503) or fail-open (drop records, counted and logged)", (*stringValue)(&c.AuditSpoolFull)},
		{"audit-content", "record prompts and responses in the audit trail (false: metadata only; groups can turn content off too)", (*boolValue)(&c.AuditContent)},
		{"audit-flush-interval", "longest a finished audit record waits for its batch; a `duration`", (*durationValue)(&c.AuditFlushInterval)},
		{"audit-retry-interval", "wait after a batch the control plane did not acknowledge; a `duration`", (*durationValue)(&c.AuditRetryInterval)},
		{"pprof-allow-remote", "let -pprof-listen bind a non-loopback address (profiles expose memory contents; keep them off untrusted networks)", (*boolValue)(&c.PprofAllowRemote)},
	}, c.searchSettings()...)
}

type stringValue string

func (v *stringValue) String() string     { return string(*v) }
func (v *stringValue) Set(s string) error { *v = stringValue(s); return nil }

// secretValue never shows its value (flag help prints defaults).
type secretValue string

func (v *secretValue) String() string     { return "" }
func (v *secretValue) Set(s string) error { *v = secretValue(s); return nil }

type intValue int

func (v *intValue) String() string { return strconv.Itoa(int(*v)) }
func (v *intValue) Set(s string) error {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("not an integer")
	}
	*v = intValue(n)
	return nil
}

type durationValue time.Duration

func (v *durationValue) String() string { return time.Duration(*v).String() }
func (v *durationValue) Set(s string) error {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("not a duration (like 30s or 5m)")
	}
	*v = durationValue(d)
	return nil
}

// byteSize is a byte count, optionally with a binary suffix (KiB, MiB, GiB; K,
// M, G mean the same).
type byteSize int64

func (v *byteSize) String() string { return strconv.FormatInt(int64(*v), 10) }
func (v *byteSize) Set(s string) error {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}} {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return fmt.Errorf("not a byte size (like 52428800 or 50MiB)")
	}
	*v = byteSize(n * mult)
	return nil
}
