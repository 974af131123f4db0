package store_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

func TestSQLite(t *testing.T) {
	t.Parallel()
	runSuite(t, openSQLiteStore)
}

func TestMariaDB(t *testing.T) {
	t.Parallel()
	requireMariaDB(t)
	runSuite(t, openMariaStore)
}

// runSuite runs every behaviour test against stores from open.
func runSuite(t *testing.T, open opener) {
	tests := []struct {
		name string
		run  func(t *testing.T, s *store.Store)
	}{
		{"DefaultGroups", testDefaultGroups},
		{"Users", testUsers},
		{"ListUsers", testListUsers},
		{"APIKeys", testAPIKeys},
		{"RevokeAndExpire", testRevokeAndExpire},
		{"RecordKeyUse", testRecordKeyUse},
		{"ServiceKeyRequests", testServiceKeyRequests},
		{"QuotaUsage", testQuotaUsage},
		{"UpdateGroup", testUpdateGroup},
		{"GroupLifecycle", testGroupLifecycle},
		{"DeleteUser", testDeleteUser},
		{"RenewAndServiceKeys", testRenewAndServiceKeys},
		{"QuotaRequests", testQuotaRequests},
		{"Sessions", testSessions},
		{"Nodes", testNodes},
		{"GPUDevices", testGPUDevices},
		{"Backends", testBackends},
		{"SeedBackend", testSeedBackend},
		{"BackendHealth", testBackendHealth},
		{"SyncModels", testSyncModels},
		{"AuditRecords", testAuditRecords},
		{"AdminActions", testAdminActions},
		{"Reopen", func(t *testing.T, s *store.Store) { require.NoError(t, s.Ping(ctxT(t))) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, open(t))
		})
	}
}

// TestMariaDBConcurrentMigration starts several stores on one empty database at
// once; the migration lock must let every one of them succeed.
func TestMariaDBConcurrentMigration(t *testing.T) {
	t.Parallel()
	dsn := newMariaDatabase(t)
	const n = 3
	var wg sync.WaitGroup
	errs := make([]error, n)
	stores := make([]*store.Store, n)
	for i := range n {
		wg.Go(func() {
			stores[i], errs[i] = store.Open(context.Background(), store.Config{Driver: "mysql", DSN: dsn}, testLogger(t))
		})
	}
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i], "store %d", i)
		t.Cleanup(func() { _ = stores[i].Close() })
	}
	groups, err := stores[0].ListGroups(ctxT(t))
	require.NoError(t, err)
	require.Len(t, groups, len(store.DefaultGroups()), "each default group seeded exactly once")
}

func TestOpenSQLiteIdempotent(t *testing.T) {
	t.Parallel()
	dsn := store.SQLiteDSN(t.TempDir() + "/again.db")
	for range 2 {
		s, err := store.Open(ctxT(t), store.Config{Driver: "sqlite", DSN: dsn}, nil)
		require.NoError(t, err)
		groups, err := s.ListGroups(ctxT(t))
		require.NoError(t, err)
		require.Len(t, groups, len(store.DefaultGroups()))
		require.NoError(t, s.Close())
	}
}

func TestOpenRejectsUnknownDriver(t *testing.T) {
	t.Parallel()
	_, err := store.Open(ctxT(t), store.Config{Driver: "postgres", DSN: "x"}, nil)
	require.ErrorContains(t, err, `unknown driver "postgres"`)
}

func TestSQLiteDSN(t *testing.T) {
	t.Parallel()
	dsn := store.SQLiteDSN("/var/lib/mindrouter/a?b#c.db")
	require.True(t, strings.HasPrefix(dsn, "file:/var/lib/mindrouter/a%3fb%23c.db?"), dsn)
	for _, want := range []string{"foreign_keys%281%29", "journal_mode%28WAL%29", "busy_timeout", "_txlock=immediate"} {
		require.Contains(t, dsn, want)
	}
}

func TestMySQLDSN(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"root@tcp(127.0.0.1:3306)/mr", "parseTime=true"},
		{"u:p@tcp(db:3306)/mr?parseTime=false", "parseTime=true"},
	}
	for _, tc := range tests {
		got, err := store.MySQLDSN(tc.in)
		require.NoError(t, err)
		require.Contains(t, got, tc.want)
	}
	_, err := store.MySQLDSN("not a dsn")
	require.Error(t, err)
}

func TestOpenSQLiteInMemory(t *testing.T) {
	t.Parallel()
	s, err := store.Open(ctxT(t), store.Config{Driver: "sqlite", DSN: ":memory:"}, nil)
	require.NoError(t, err)
	defer func() { _ = s.Close() }()
	u := seedUser(t, s, "mem", store.GroupStudent)
	got, err := s.GetUser(ctxT(t), u.ID)
	require.NoError(t, err)
	require.Equal(t, "mem", got.Username)
}
