package telemetry

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"

	"google.golang.org/grpc/metadata"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

// Metadata keys an agent authenticates with.
const (
	NodeHeader = "x-mindrouter-node"
	AuthHeader = "authorization"
)

// authenticate returns the node the stream's metadata proves to be.
func (s *Service) authenticate(ctx context.Context) (store.Node, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	name := firstValue(md, NodeHeader)
	secret, hasSecret := parseBearer(firstValue(md, AuthHeader))
	if name == "" || !hasSecret {
		return store.Node{}, s.refuse(name, "missing node name or bearer secret")
	}
	node, err := s.st.GetNodeByName(ctx, name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		// Compare anyway, against no digest, so the refusal costs the same work.
		secretMatches(secret, "")
		return store.Node{}, s.refuse(name, "unknown node")
	case err != nil:
		s.log.Error("look up node for telemetry", slog.String("node", name), slog.Any("error", err))
		return store.Node{}, ErrLookupUnavailable
	}
	if !secretMatches(secret, node.AgentSecretSHA256) {
		reason := "wrong secret"
		if node.AgentSecretSHA256 == "" {
			reason = "node has no agent secret set"
		}
		return store.Node{}, s.refuse(name, reason)
	}
	return node, nil
}

// refuse logs why (for the operator, never the secret) and returns ErrRefused.
func (s *Service) refuse(node, reason string) error {
	s.authFailures.Add(1)
	s.log.Warn("telemetry stream refused", slog.String("node", node), slog.String("reason", reason))
	return ErrRefused
}

// secretMatches compares SHA-256(secret) with a hex digest in constant time. An empty
// or malformed digest matches nothing, after the same comparison.
func secretMatches(secret, digestHex string) bool {
	got := sha256.Sum256([]byte(secret))
	want, err := hex.DecodeString(digestHex)
	valid := err == nil && len(want) == sha256.Size
	if !valid {
		want = make([]byte, sha256.Size)
	}
	return subtle.ConstantTimeCompare(got[:], want) == 1 && valid
}

// parseBearer extracts the token of "Bearer <token>" (scheme case-insensitive).
func parseBearer(v string) (string, bool) {
	const scheme = "bearer "
	if len(v) <= len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) {
		return "", false
	}
	tok := strings.TrimSpace(v[len(scheme):])
	return tok, tok != ""
}

func firstValue(md metadata.MD, key string) string {
	if v := md.Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}
