package server

import (
	"context"
	"net"
	"strings"

	"google.golang.org/grpc/peer"

	"github.com/mindrouter/mindrouter/controlplane/internal/identity"
	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

// ActionRecorder runs a state-changing admin call in one transaction with the
// record of what it changed (store.Store.RunAudited).
type ActionRecorder interface {
	RunAudited(ctx context.Context, actor store.Actor, method string, fn func(ctx context.Context) error) error
}

// withActor records who is calling, and from where, for the audit trail.
func withActor(ctx context.Context, p identity.Principal) context.Context {
	return store.NewActorContext(ctx, store.Actor{UserID: p.UserID, Username: p.Username, ClientIP: clientIP(ctx)})
}

func actorFrom(ctx context.Context) store.Actor {
	a, _ := store.ActorFromContext(ctx)
	return a
}

// clientIP is the address the call came from: the first X-Forwarded-For hop
// when the REST gateway (or a data plane's admin proxy) relayed it, the peer
// otherwise.
func clientIP(ctx context.Context) string {
	if xff := header(ctx, "x-forwarded-for"); xff != "" {
		first, _, _ := strings.Cut(xff, ",")
		if ip := net.ParseIP(strings.TrimSpace(first)); ip != nil {
			return ip.String()
		}
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		if host, _, err := net.SplitHostPort(p.Addr.String()); err == nil {
			return host
		}
		return p.Addr.String()
	}
	return ""
}
