package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Leader is the row of the leader_leases table that names which control plane
// leads. Holder is the leader's advertise address ("" after it resigned); Token
// is the fencing token, raised by every claim; Version is raised by every claim
// and renewal, so that a standby sees a leader that stopped renewing.
type Leader struct {
	Holder  string
	Token   int64
	Version int64
}

// leaderTable is created outside ent's schema: it is the election's own, plain
// SQL that is the same on SQLite and MariaDB, and it must exist before anything
// else in the process acts.
const leaderTable = `CREATE TABLE IF NOT EXISTS leader_leases (
	name VARCHAR(64) NOT NULL PRIMARY KEY,
	holder VARCHAR(255) NOT NULL,
	token BIGINT NOT NULL,
	version BIGINT NOT NULL
)`

// EnsureLeaderTable creates the leader_leases table when it does not exist.
func (s *Store) EnsureLeaderTable(ctx context.Context) error {
	bctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	_, err := s.db.ExecContext(bctx, leaderTable)
	return wrapUnavailable("create leader_leases", ctx, bctx, err)
}

// ReadLeader returns the named election's row; ok is false when nobody ever
// claimed it.
func (s *Store) ReadLeader(ctx context.Context, name string) (l Leader, ok bool, err error) {
	bctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	err = s.db.QueryRowContext(bctx, "SELECT holder, token, version FROM leader_leases WHERE name = ?", name).
		Scan(&l.Holder, &l.Token, &l.Version)
	if errors.Is(err, sql.ErrNoRows) {
		return Leader{}, false, nil
	}
	if err != nil {
		return Leader{}, false, wrapUnavailable("read leader", ctx, bctx, err)
	}
	return l, true, nil
}

// ClaimLeader makes holder the leader if the row is still what the caller saw
// (seen; nil when there was no row): a compare-and-swap on the version, so that
// of two standbys claiming at once exactly one wins. It returns the new row and
// whether the claim won.
func (s *Store) ClaimLeader(ctx context.Context, name, holder string, seen *Leader) (Leader, bool, error) {
	bctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if seen == nil {
		// INSERT of an existing key fails on both databases: another claim
		// won, and the caller reads again. Failing to reach the database is
		// an error.
		_, err := s.db.ExecContext(bctx, "INSERT INTO leader_leases (name, holder, token, version) VALUES (?, ?, 1, 1)", name, holder)
		if err != nil {
			if err := unavailable(ctx, bctx, err); errors.Is(err, ErrUnavailable) || ctx.Err() != nil {
				return Leader{}, false, fmt.Errorf("claim leader: %w", err)
			}
			return Leader{}, false, nil
		}
		return Leader{Holder: holder, Token: 1, Version: 1}, true, nil
	}
	res, err := s.db.ExecContext(bctx,
		"UPDATE leader_leases SET holder = ?, token = token + 1, version = version + 1 WHERE name = ? AND version = ?",
		holder, name, seen.Version)
	if err != nil {
		return Leader{}, false, wrapUnavailable("claim leader", ctx, bctx, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return Leader{}, false, nil
	}
	return Leader{Holder: holder, Token: seen.Token + 1, Version: seen.Version + 1}, true, nil
}

// RenewLeader raises the version of the row if holder still holds it with
// token; false means leadership is lost (another instance claimed it).
func (s *Store) RenewLeader(ctx context.Context, name, holder string, token int64) (bool, error) {
	return s.updateLeader(ctx, "UPDATE leader_leases SET version = version + 1 WHERE name = ? AND holder = ? AND token = ?", name, holder, token)
}

// ResignLeader empties the holder if holder still holds the row with token, so
// that a standby takes over at once instead of waiting for the lease to lapse.
func (s *Store) ResignLeader(ctx context.Context, name, holder string, token int64) error {
	_, err := s.updateLeader(ctx, "UPDATE leader_leases SET holder = '', version = version + 1 WHERE name = ? AND holder = ? AND token = ?", name, holder, token)
	return err
}

func (s *Store) updateLeader(ctx context.Context, query, name, holder string, token int64) (bool, error) {
	bctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	res, err := s.db.ExecContext(bctx, query, name, holder, token)
	if err != nil {
		return false, wrapUnavailable("leader lease", ctx, bctx, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("leader lease: %w", err)
	}
	return n == 1, nil
}
