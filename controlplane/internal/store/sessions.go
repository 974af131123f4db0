package store

import (
	"context"
	"fmt"
	"time"

	"github.com/mindrouter/mindrouter/ent"
	"github.com/mindrouter/mindrouter/ent/session"
)

// Session is a signed-in browser. TokenSHA256 is the at-rest form of the
// cookie's token; CSRFToken is what the browser's state-changing calls echo.
type Session struct {
	ID          int64
	UserID      int64
	TokenSHA256 string
	CSRFToken   string
	Method      string
	ClientIP    string
	UserAgent   string
	CreatedAt   time.Time
	LastSeenAt  time.Time
	ExpiresAt   time.Time
}

// SessionRecord is a session with its user and the user's group: everything
// needed to authorize a request.
type SessionRecord struct {
	Session Session
	User    User
	Group   Group
}

// CreateSession stores a new session. An unknown user is ErrNotFound.
func (s *Store) CreateSession(ctx context.Context, ss Session) (Session, error) {
	op := fmt.Sprintf("open session of user %d", ss.UserID)
	row, err := s.c(ctx).Session.Create().
		SetUserID(int(ss.UserID)).
		SetTokenSha256(ss.TokenSHA256).
		SetCsrfToken(ss.CSRFToken).
		SetMethod(ss.Method).
		SetClientIP(truncate(ss.ClientIP, 64)).
		SetUserAgent(truncate(ss.UserAgent, 255)).
		SetLastSeenAt(ss.LastSeenAt.UTC()).
		SetExpiresAt(ss.ExpiresAt.UTC()).
		Save(ctx)
	if err != nil {
		return Session{}, dbErr(op, err)
	}
	return toSession(row), nil
}

// SessionByDigest returns the session whose token digest is given, with its
// user and group, expired or not; ErrNotFound when there is none.
func (s *Store) SessionByDigest(ctx context.Context, sha256hex string) (SessionRecord, error) {
	row, err := s.c(ctx).Session.Query().
		Where(session.TokenSha256(sha256hex)).
		WithUser(func(q *ent.UserQuery) { q.WithGroup() }).
		Only(ctx)
	if err != nil {
		return SessionRecord{}, dbErr("look up session", err)
	}
	u := row.Edges.User
	if u == nil || u.Edges.Group == nil {
		return SessionRecord{}, fmt.Errorf("look up session %d: user or group missing: %w", row.ID, ErrNotFound)
	}
	return SessionRecord{Session: toSession(row), User: toUser(u), Group: toGroup(u.Edges.Group)}, nil
}

// TouchSession moves a session's last use forward.
func (s *Store) TouchSession(ctx context.Context, id int64, at time.Time) error {
	err := s.c(ctx).Session.Update().
		Where(session.ID(int(id)), session.LastSeenAtLT(at.UTC())).
		SetLastSeenAt(at.UTC()).
		Exec(ctx)
	return dbErr(fmt.Sprintf("touch session %d", id), err)
}

// DeleteSession ends the session with the given token digest; it reports
// whether there was one.
func (s *Store) DeleteSession(ctx context.Context, sha256hex string) (bool, error) {
	n, err := s.c(ctx).Session.Delete().Where(session.TokenSha256(sha256hex)).Exec(ctx)
	if err != nil {
		return false, dbErr("end session", err)
	}
	return n > 0, nil
}

// DeleteUserSessions ends every session of a user except the one with the
// digest keep (none when empty) and returns how many it ended.
func (s *Store) DeleteUserSessions(ctx context.Context, userID int64, keep string) (int, error) {
	d := s.c(ctx).Session.Delete().Where(session.UserID(int(userID)))
	if keep != "" {
		d.Where(session.TokenSha256NEQ(keep))
	}
	n, err := d.Exec(ctx)
	if err != nil {
		return 0, dbErr(fmt.Sprintf("end sessions of user %d", userID), err)
	}
	return n, nil
}

// PruneSessions deletes sessions past their absolute end or idle since before
// idleBefore, and returns how many.
func (s *Store) PruneSessions(ctx context.Context, now, idleBefore time.Time) (int, error) {
	n, err := s.c(ctx).Session.Delete().
		Where(session.Or(session.ExpiresAtLTE(now.UTC()), session.LastSeenAtLT(idleBefore.UTC()))).
		Exec(ctx)
	if err != nil {
		return 0, dbErr("prune sessions", err)
	}
	return n, nil
}

func toSession(r *ent.Session) Session {
	return Session{
		ID:          int64(r.ID),
		UserID:      int64(r.UserID),
		TokenSHA256: r.TokenSha256,
		CSRFToken:   r.CsrfToken,
		Method:      r.Method,
		ClientIP:    r.ClientIP,
		UserAgent:   r.UserAgent,
		CreatedAt:   utc(r.CreatedAt),
		LastSeenAt:  utc(r.LastSeenAt),
		ExpiresAt:   utc(r.ExpiresAt),
	}
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
