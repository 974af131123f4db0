package store_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
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
		{"DeletedUserRecordsStay", testDeletedUserRecordsStay},
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
		{"AuditPaging", testAuditPaging},
		{"AuditIngest", testAuditIngest},
		{"AuditIngestLargeRows", testAuditIngestLargeRows},
		{"AdminActions", testAdminActions},
		{"SystemSwitchFollowsCommits", testSystemSwitchFollowsCommits},
		{"Conversations", testConversations},
		{"StoredResponses", testStoredResponses},
		{"StoredResponseSizeCap", testStoredResponseSizeCap},
		{"PurgeResponses", testPurgeResponses},
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

// TestAuditedTxBeginsAtFirstStoreCall: an audited call's transaction begins at
// its first store call, so that slow work before it (Argon2 hashing) does not
// count against the transaction's deadline or hold it open; a read made with
// ReadBeforeTx does not begin it either. With a transaction begun before fn,
// the write below would run past that deadline and fail.
func TestAuditedTxBeginsAtFirstStoreCall(t *testing.T) {
	t.Parallel()
	for name, dsn := range map[string]func(t *testing.T) store.Config{
		"sqlite": func(t *testing.T) store.Config {
			return store.Config{Driver: "sqlite", DSN: store.SQLiteDSN(t.TempDir() + "/mr.db")}
		},
		"mariadb": func(t *testing.T) store.Config { return store.Config{Driver: "mysql", DSN: newMariaDatabase(t)} },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := dsn(t)
			cfg.Timeout = 2 * time.Second
			s, err := store.Open(ctxT(t), cfg, testLogger(t))
			require.NoError(t, err)
			t.Cleanup(func() { _ = s.Close() })
			ctx := ctxT(t)
			g, err := s.GetGroupByName(ctx, store.GroupStudent)
			require.NoError(t, err)
			budget := int64(4242)
			err = s.RunAudited(ctx, store.Actor{UserID: 7, Username: "root"}, "/mindrouter.admin.v1.IdentityService/UpdateGroup", func(ctx context.Context) error {
				if _, err := s.GetGroup(store.ReadBeforeTx(ctx), g.ID); err != nil {
					return err
				}
				// Stands for the Argon2 work of a key or password change.
				time.Sleep(cfg.Timeout + time.Second)
				_, err := s.UpdateGroup(ctx, g.ID, store.GroupPatch{TokenBudget: &budget})
				return err
			})
			require.NoError(t, err)
			got, err := s.GetGroup(ctx, g.ID)
			require.NoError(t, err)
			assert.Equal(t, budget, got.TokenBudget)
			acts, _, err := s.SearchAdminActions(ctx, store.AdminActionFilter{ActorUserID: 7}, "", 10)
			require.NoError(t, err)
			require.Len(t, acts, 1, "the change and its record committed together")
			assert.Equal(t, "group.update", acts[0].Action)
		})
	}
}
