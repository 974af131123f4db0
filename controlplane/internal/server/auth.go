package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/mindrouter/mindrouter/controlplane/internal/identity"
)

// ClusterTokenHeader carries the shared secret that data-plane replicas present.
const ClusterTokenHeader = "x-mindrouter-cluster-token"

// SessionHeader carries a browser session's token (data planes put the
// session cookie there) and CSRFHeader the CSRF token the browser sent with a
// state-changing call.
const (
	SessionHeader = "x-mindrouter-session"
	CSRFHeader    = "x-mindrouter-csrf"
)

// Verifier resolves an API key to a principal.
type Verifier interface {
	Verify(ctx context.Context, credential string) (identity.Principal, error)
}

// SessionVerifier resolves a browser session token to a principal whose
// SessionID and CSRFToken are set.
type SessionVerifier interface {
	VerifySession(ctx context.Context, token string) (identity.Principal, error)
}

// access is what a method requires of its caller.
type access int

const (
	accessPublic       access = iota + 1 // health, reflection
	accessCluster                        // data-plane replicas: the cluster token
	accessNode                           // node agents: checked by the telemetry service itself
	accessRead                           // admin or auditor: an API key with the admin scope, or a session
	accessWrite                          // admin: an API key with the admin scope, or a session with its CSRF token
	accessAccountRead                    // any signed-in user, by API key or session: their own account
	accessAccountWrite                   // any signed-in user by session with its CSRF token: their own account
)

// accessFor classifies a full gRPC method name. Anything unknown is refused, so a new
// service cannot be exposed by accident.
func accessFor(method string) (access, bool) {
	switch {
	case strings.HasPrefix(method, "/grpc.health.v1."), strings.HasPrefix(method, "/grpc.reflection."):
		return accessPublic, true
	case strings.HasPrefix(method, "/mindrouter.controlplane.v1."):
		return accessCluster, true
	case strings.HasPrefix(method, "/mindrouter.nodeagent.v1."):
		return accessNode, true
	case strings.HasPrefix(method, "/mindrouter.admin.v1."), strings.HasPrefix(method, "/mindrouter.audit.v1."):
		name := method[strings.LastIndex(method, "/")+1:]
		if strings.HasPrefix(name, "List") || strings.HasPrefix(name, "Get") || strings.HasPrefix(name, "Export") || strings.HasPrefix(name, "Watch") {
			return accessRead, true
		}
		return accessWrite, true
	case strings.HasPrefix(method, "/mindrouter.account.v1."):
		name := method[strings.LastIndex(method, "/")+1:]
		if strings.HasPrefix(name, "List") || strings.HasPrefix(name, "Get") || strings.HasPrefix(name, "Export") || name == "WhoAmI" {
			return accessAccountRead, true
		}
		return accessAccountWrite, true
	}
	return 0, false
}

// privateData reports whether a write method changes a person's private data
// rather than their account: the web chat's conversations. Such writes are
// not copied into the admin-action trail (it would hold every chat message,
// whatever the audit trail's content policy); the inference requests behind
// the chat are audited like any other request.
func privateData(method string) bool {
	return strings.HasPrefix(method, "/mindrouter.account.v1.ConversationService/")
}

// authenticator enforces accessFor on every call.
type authenticator struct {
	verifier     Verifier
	sessions     SessionVerifier
	clusterToken [sha256.Size]byte
}

func newAuthenticator(v Verifier, sessions SessionVerifier, clusterToken string) *authenticator {
	return &authenticator{verifier: v, sessions: sessions, clusterToken: sha256.Sum256([]byte(clusterToken))}
}

// authorize returns the context the handler runs with, or a status error.
func (a *authenticator) authorize(ctx context.Context, method string) (context.Context, error) {
	level, ok := accessFor(method)
	if !ok {
		return nil, status.Error(codes.PermissionDenied, "method not exposed")
	}
	switch level {
	case accessPublic, accessNode:
		return ctx, nil
	case accessCluster:
		// Digests have a fixed length, so the comparison time says nothing about the token.
		got := sha256.Sum256([]byte(header(ctx, ClusterTokenHeader)))
		if subtle.ConstantTimeCompare(got[:], a.clusterToken[:]) != 1 {
			return nil, status.Error(codes.Unauthenticated, "invalid cluster token")
		}
		return ctx, nil
	}
	if key := bearer(ctx); key != "" {
		p, err := a.verifier.Verify(ctx, key)
		if err != nil {
			return nil, err
		}
		if err := keyAllowed(p, level); err != nil {
			return nil, err
		}
		return withActor(identity.NewContext(ctx, p), p), nil
	}
	if token := header(ctx, SessionHeader); token != "" && a.sessions != nil {
		p, err := a.sessions.VerifySession(ctx, token)
		if err != nil {
			return nil, err
		}
		if err := sessionAllowed(p, level, header(ctx, CSRFHeader)); err != nil {
			return nil, err
		}
		return withActor(identity.WithSessionToken(identity.NewContext(ctx, p), token), p), nil
	}
	return nil, status.Error(codes.Unauthenticated, "missing credentials: send Authorization: Bearer <key>, or sign in")
}

// keyAllowed applies level to an API key's principal: admin methods need the
// admin scope and the group's privilege; account writes need a session.
func keyAllowed(p identity.Principal, level access) error {
	switch level {
	case accessAccountRead:
		return nil
	case accessAccountWrite:
		return identity.ErrSessionRequired
	}
	if !p.HasScope(identity.ScopeAdmin) {
		return identity.ErrPermissionDenied
	}
	return groupAllowed(p, level)
}

// sessionAllowed applies level to a session's principal: a session acts with
// its user's group rights, and every state-changing call must carry the
// session's CSRF token.
func sessionAllowed(p identity.Principal, level access, csrf string) error {
	if (level == accessWrite || level == accessAccountWrite) && !identity.SameSecret(csrf, p.CSRFToken) {
		return identity.ErrCSRF
	}
	if level == accessAccountRead || level == accessAccountWrite {
		return nil
	}
	return groupAllowed(p, level)
}

// groupAllowed lets admins do everything and auditors read.
func groupAllowed(p identity.Principal, level access) error {
	if p.IsAdmin || (level == accessRead && p.IsAuditor) {
		return nil
	}
	return identity.ErrPermissionDenied
}

// header returns the first value of an incoming metadata key. It reads the one
// key instead of copying all the metadata, as metadata.FromIncomingContext does
// (that copy was a tenth of the control plane's CPU per call).
func header(ctx context.Context, key string) string {
	if v := metadata.ValueFromIncomingContext(ctx, key); len(v) > 0 {
		return v[0]
	}
	return ""
}

// bearer extracts the API key from "authorization: Bearer <key>" or "x-api-key".
func bearer(ctx context.Context) string {
	if v := header(ctx, "authorization"); v != "" {
		if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
			return strings.TrimSpace(v[7:])
		}
		return ""
	}
	return strings.TrimSpace(header(ctx, "x-api-key"))
}

// unary and stream wrap handlers with authorization and error mapping.
func (s *Server) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer s.recoverPanic(ctx, info.FullMethod, &err)
	actx, err := s.auth.authorize(ctx, info.FullMethod)
	if err != nil {
		return nil, toStatus(ctx, s.log, info.FullMethod, err)
	}
	if level, _ := accessFor(info.FullMethod); s.actions != nil && (level == accessWrite || level == accessAccountWrite) && !privateData(info.FullMethod) {
		// A change and its admin-action record commit in one transaction.
		err = s.actions.RunAudited(actx, actorFrom(actx), info.FullMethod, func(tctx context.Context) error {
			var herr error
			resp, herr = handler(tctx, req)
			return herr
		})
		return resp, toStatus(ctx, s.log, info.FullMethod, err)
	}
	resp, err = handler(actx, req)
	return resp, toStatus(ctx, s.log, info.FullMethod, err)
}

func (s *Server) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	ctx := ss.Context()
	defer s.recoverPanic(ctx, info.FullMethod, &err)
	actx, err := s.auth.authorize(ctx, info.FullMethod)
	if err != nil {
		return toStatus(ctx, s.log, info.FullMethod, err)
	}
	return toStatus(ctx, s.log, info.FullMethod, handler(srv, &contextStream{ServerStream: ss, ctx: actx}))
}

// contextStream replaces a stream's context with the authorized one.
type contextStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (c *contextStream) Context() context.Context { return c.ctx }
