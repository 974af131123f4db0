package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"github.com/go-sql-driver/mysql"
)

// DefaultTimeout bounds every database call (a transaction as a whole) when
// Config.Timeout is zero.
const DefaultTimeout = 5 * time.Second

// unavailableRetryAfter is the Retry-After that errors wrapping ErrUnavailable carry.
const unavailableRetryAfter = 5 * time.Second

// unavailableError is a database call that failed because the database could not
// be reached in time. It matches ErrUnavailable and not its cause: a deadline of
// the store's own is no deadline of the caller's.
type unavailableError struct{ cause error }

// Unavailable wraps cause, a failure to reach the database noticed outside the
// store (a caller's own deadline on a lookup), like the store's own.
func Unavailable(cause error) error { return &unavailableError{cause: cause} }

func (e *unavailableError) Error() string { return "database unavailable: " + e.cause.Error() }

func (e *unavailableError) Is(target error) bool { return target == ErrUnavailable }

// RetryAfter is how long a client should wait before trying again.
func (e *unavailableError) RetryAfter() time.Duration { return unavailableRetryAfter }

// deadlineDriver gives every statement, and every transaction as a whole, a
// deadline of its own, and turns failures to reach the database into
// ErrUnavailable. Without it a frozen database (a stopped process, a partition
// that drops packets) would hold callers until TCP gives up, minutes later.
type deadlineDriver struct {
	dialect.Driver
	timeout time.Duration
}

func (d *deadlineDriver) Exec(ctx context.Context, query string, args, v any) error {
	bctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	return unavailable(ctx, bctx, d.Driver.Exec(bctx, query, args, v))
}

func (d *deadlineDriver) Query(ctx context.Context, query string, args, v any) error {
	bctx, cancel := context.WithTimeout(ctx, d.timeout)
	return queryBounded(ctx, bctx, cancel, d.Driver, query, args, v)
}

// queryBounded runs a query on bctx, which must stay alive while the rows are
// read: cancel runs when they are closed (or at once when the query fails).
func queryBounded(ctx, bctx context.Context, cancel context.CancelFunc, q dialect.ExecQuerier, query string, args, v any) error {
	if err := q.Query(bctx, query, args, v); err != nil {
		cancel()
		return unavailable(ctx, bctx, err)
	}
	if rows, ok := v.(*entsql.Rows); ok && rows.ColumnScanner != nil {
		rows.ColumnScanner = &boundedRows{ColumnScanner: rows.ColumnScanner, cancel: cancel}
		return nil
	}
	cancel()
	return nil
}

func (d *deadlineDriver) Tx(ctx context.Context) (dialect.Tx, error) {
	bctx, cancel := context.WithTimeout(ctx, d.timeout)
	tx, err := d.Driver.Tx(bctx)
	if err != nil {
		cancel()
		return nil, unavailable(ctx, bctx, err)
	}
	return &boundedTx{tx: tx, ctx: ctx, bctx: bctx, cancel: cancel}, nil
}

// boundedTx runs a transaction under one deadline. Its statements get that
// deadline too: database/sql rolls a transaction back when its context ends, but
// only after the statement in flight returns, which on a frozen database it would
// not do by itself.
type boundedTx struct {
	tx     dialect.Tx
	ctx    context.Context // the caller's, to tell its cancellation from the deadline
	bctx   context.Context
	cancel context.CancelFunc
}

func (t *boundedTx) Exec(ctx context.Context, query string, args, v any) error {
	sctx, cancel := t.statementCtx(ctx)
	defer cancel()
	return unavailable(ctx, sctx, t.tx.Exec(sctx, query, args, v))
}

// ExecContext runs a statement of the store's own (ent.Tx.ExecContext) under
// the transaction's deadline, like Exec.
func (t *boundedTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	sctx, cancel := t.statementCtx(ctx)
	defer cancel()
	var res sql.Result
	err := t.tx.Exec(sctx, query, args, &res)
	return res, unavailable(ctx, sctx, err)
}

func (t *boundedTx) Query(ctx context.Context, query string, args, v any) error {
	sctx, cancel := t.statementCtx(ctx)
	return queryBounded(ctx, sctx, cancel, t.tx, query, args, v)
}

func (t *boundedTx) statementCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	deadline, _ := t.bctx.Deadline()
	return context.WithDeadline(ctx, deadline)
}

func (t *boundedTx) Commit() error {
	defer t.cancel()
	return unavailable(t.ctx, t.bctx, t.tx.Commit())
}

func (t *boundedTx) Rollback() error {
	defer t.cancel()
	return unavailable(t.ctx, t.bctx, t.tx.Rollback())
}

// boundedRows ends the query's deadline when the rows are closed.
type boundedRows struct {
	entsql.ColumnScanner
	cancel context.CancelFunc
}

func (r *boundedRows) Close() error {
	defer r.cancel()
	return r.ColumnScanner.Close()
}

// unavailable wraps err in ErrUnavailable when it says that the database could
// not be reached or did not answer before the store's deadline (bctx), while the
// caller (ctx) was still waiting. Other errors, and those of a caller that gave
// up, come back unchanged.
func unavailable(ctx, bctx context.Context, err error) error {
	if err == nil || ctx.Err() != nil || errors.Is(err, ErrUnavailable) {
		return err
	}
	if bctx.Err() != nil || Unreachable(err) {
		return &unavailableError{cause: err}
	}
	return err
}

// mysqlUnavailable lists the server errors that mean the server cannot serve
// now: too many connections (1040), shutdown in progress (1053), connection
// killed (1927).
var mysqlUnavailable = map[uint16]bool{1040: true, 1053: true, 1927: true}

// Unreachable reports whether err means the database could not be reached: a
// refused or broken connection, a network timeout, a connection the driver gave
// up on, or a server that says it cannot serve now.
func Unreachable(err error) bool {
	var (
		netErr   net.Error
		mysqlErr *mysql.MySQLError
	)
	switch {
	case errors.Is(err, driver.ErrBadConn), errors.Is(err, mysql.ErrInvalidConn), errors.Is(err, sql.ErrConnDone),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, context.DeadlineExceeded):
		return true
	case errors.As(err, &netErr):
		return true
	case errors.As(err, &mysqlErr):
		return mysqlUnavailable[mysqlErr.Number]
	}
	return false
}

// wrapUnavailable marks an error of a call made outside the ent driver (a ping)
// like the driver's own.
func wrapUnavailable(op string, ctx, bctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", op, unavailable(ctx, bctx, err))
}
