package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"github.com/go-sql-driver/mysql"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/mindrouter/mindrouter/ent"
	"github.com/mindrouter/mindrouter/ent/migrate"
)

// Drivers Open accepts.
const (
	DriverSQLite = "sqlite"
	DriverMySQL  = "mysql"
)

// migrationLock names the MariaDB lock held while migrating and seeding. Named
// locks are server-wide, so the lock is taken per database (lockName): control
// planes on one database migrate one after the other, while control planes (or
// test suites) on other databases of the same server never wait for each other.
const migrationLock = "mindrouter_migrate"

// lockName is the SQL expression of the per-database lock name; MariaDB limits
// lock names to 64 characters.
const lockName = "LEFT(CONCAT(?, ':', COALESCE(DATABASE(), '')), 64)"

// migrationLockWait bounds how long Open waits for another instance's migration.
const migrationLockWait = 60 * time.Second

// migrateMu serialises migrations within the process. ent's migration mutates the
// generated, package-level table descriptions (ent/migrate.Tables), so two stores
// migrating at once in one process would race on them. This is the package's only
// global state, and it guards a global it does not own.
var migrateMu sync.Mutex

// Config chooses the database.
type Config struct {
	// Driver is "sqlite" (embedded, the default) or "mysql" (MariaDB or MySQL).
	Driver string
	// DSN is a SQLite file DSN (see SQLiteDSN) or a go-sql-driver/mysql DSN such as
	// "user:pass@tcp(db:3306)/mindrouter". Missing required options are added.
	DSN string
	// Timeout bounds every database call after Open, a transaction as a whole:
	// DefaultTimeout when zero. A call that runs out of it, or cannot reach the
	// database, fails with ErrUnavailable.
	Timeout time.Duration
}

// Store is the control plane's database. It is safe for concurrent use.
type Store struct {
	client  *ent.Client
	db      *sql.DB
	driver  string
	timeout time.Duration
	// textScanRows caps a MariaDB text search's recent-first scan (searchTextMySQL).
	textScanRows int
	log          *slog.Logger
}

// Open connects, migrates the schema and seeds the default groups. On MariaDB the
// migration runs under the named lock "mindrouter_migrate:<database>", so that control
// planes starting together on one database migrate one after the other.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var (
		db      *sql.DB
		dialect string
		err     error
	)
	switch strings.ToLower(cfg.Driver) {
	case "", DriverSQLite, "sqlite3":
		db, err = openSQLite(cfg.DSN)
		dialect = dialectSQLite
	case DriverMySQL, "mariadb":
		db, err = openMySQL(cfg.DSN)
		dialect = dialectMySQL
	default:
		return nil, fmt.Errorf("open store: unknown driver %q (want sqlite or mysql)", cfg.Driver)
	}
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open store: connect: %w", err)
	}
	drv := entsql.OpenDB(dialect, db)
	s := &Store{
		// The migration runs on Open's context alone: creating every table may
		// take longer than one call's deadline.
		client:       ent.NewClient(ent.Driver(drv)),
		db:           db,
		driver:       dialect,
		timeout:      cfg.Timeout,
		textScanRows: defaultTextScanRows,
		log:          log,
	}
	if s.timeout <= 0 {
		s.timeout = DefaultTimeout
	}
	if err := s.migrate(ctx); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	s.client = ent.NewClient(ent.Driver(&deadlineDriver{Driver: drv, timeout: s.timeout}))
	s.client.Use(s.auditHook)
	return s, nil
}

const (
	dialectSQLite = dialect.SQLite
	dialectMySQL  = dialect.MySQL
)

// SQLiteDSN returns a file DSN for the database at path with the pragmas the store
// needs: foreign keys on, WAL journal, a busy timeout, and BEGIN IMMEDIATE
// transactions (a read-then-write transaction cannot fail to upgrade its lock).
func SQLiteDSN(path string) string {
	r := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")
	return withSQLitePragmas("file:" + r.Replace(path))
}

// withSQLitePragmas adds whichever of the required options dsn lacks.
func withSQLitePragmas(dsn string) string {
	base, query, _ := strings.Cut(dsn, "?")
	q, err := url.ParseQuery(query)
	if err != nil {
		q = url.Values{}
	}
	has := func(name string) bool {
		for _, p := range q["_pragma"] {
			if strings.HasPrefix(strings.ToLower(strings.TrimSpace(p)), name) {
				return true
			}
		}
		return false
	}
	if !has("foreign_keys") {
		q.Add("_pragma", "foreign_keys(1)")
	}
	if !has("journal_mode") {
		q.Add("_pragma", "journal_mode(WAL)")
	}
	if !has("busy_timeout") {
		q.Add("_pragma", "busy_timeout(10000)")
	}
	if q.Get("_txlock") == "" {
		q.Set("_txlock", "immediate")
	}
	return base + "?" + q.Encode()
}

func openSQLite(dsn string) (*sql.DB, error) {
	if dsn == "" {
		return nil, errors.New("sqlite: empty DSN (want a file path, see SQLiteDSN)")
	}
	if !strings.HasPrefix(dsn, "file:") && !strings.Contains(dsn, "?") && dsn != ":memory:" {
		dsn = SQLiteDSN(dsn)
	} else {
		dsn = withSQLitePragmas(dsn)
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	if strings.Contains(dsn, ":memory:") || strings.Contains(dsn, "mode=memory") {
		// Every connection to an in-memory database is a database of its own.
		db.SetMaxOpenConns(1)
	}
	return db, nil
}

// MySQLDSN returns dsn with the options the store needs: parseTime so DATETIME
// columns scan into time.Time, and UTC as the connection's time zone.
func MySQLDSN(dsn string) (string, error) {
	c, err := mysql.ParseDSN(dsn)
	if err != nil {
		return "", fmt.Errorf("mysql: parse DSN: %w", err)
	}
	c.ParseTime = true
	if c.Loc == nil {
		c.Loc = time.UTC
	}
	return c.FormatDSN(), nil
}

func openMySQL(dsn string) (*sql.DB, error) {
	dsn, err := MySQLDSN(dsn)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return nil, fmt.Errorf("mysql: %w", err)
	}
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(16)
	db.SetConnMaxLifetime(5 * time.Minute)
	return db, nil
}

// migrate creates missing tables, columns and indexes and seeds the default groups.
// It never drops anything.
func (s *Store) migrate(ctx context.Context) error {
	if s.driver == dialectMySQL {
		unlock, err := s.lock(ctx)
		if err != nil {
			return err
		}
		defer unlock()
	}
	start := time.Now()
	migrateMu.Lock()
	defer migrateMu.Unlock()
	if err := s.client.Schema.Create(ctx, migrate.WithDropColumn(false), migrate.WithDropIndex(false)); err != nil {
		return fmt.Errorf("migrate schema: %w", err)
	}
	if err := s.createFullText(ctx); err != nil {
		return err
	}
	if err := s.EnsureDefaultGroups(ctx); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "database schema ready", slog.String("driver", s.driver), slog.Duration("took", time.Since(start)))
	return nil
}

// lock takes the MariaDB migration lock on a dedicated connection (named locks
// belong to a session) and returns the function that releases it.
func (s *Store) lock(ctx context.Context) (func(), error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("migration lock: %w", err)
	}
	var got sql.NullInt64
	err = conn.QueryRowContext(ctx, "SELECT GET_LOCK("+lockName+", ?)", migrationLock, int(migrationLockWait/time.Second)).Scan(&got)
	if err != nil || !got.Valid || got.Int64 != 1 {
		_ = conn.Close()
		if err == nil {
			err = fmt.Errorf("another instance held %q for %s", migrationLock, migrationLockWait)
		}
		return nil, fmt.Errorf("migration lock: %w", err)
	}
	return func() {
		// Releasing on a fresh context: the lock must go even when ctx is done.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := conn.ExecContext(rctx, "SELECT RELEASE_LOCK("+lockName+")", migrationLock); err != nil {
			s.log.WarnContext(ctx, "release migration lock", slog.Any("error", err))
		}
		_ = conn.Close()
	}, nil
}

// Close closes the database.
func (s *Store) Close() error {
	if err := s.client.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// Ping checks that the database answers within the store's deadline.
func (s *Store) Ping(ctx context.Context) error {
	bctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return wrapUnavailable("ping store", ctx, bctx, s.db.PingContext(bctx))
}

// withTx runs fn in a transaction, committing when it returns nil. Inside an
// audited call (RunAudited) fn runs in that call's transaction instead.
func (s *Store) withTx(ctx context.Context, fn func(tx *ent.Tx) error) error {
	if tx, ok, err := auditedFrom(ctx).join(); ok {
		if err != nil {
			return err
		}
		return fn(tx)
	}
	tx, err := s.client.Tx(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// Time helpers shared by the entity files.

func utc(t time.Time) time.Time { return t.UTC() }

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func intPtr(p *int) *int {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
