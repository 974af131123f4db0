package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/openai/openai-go/v3"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/e2e/internal/cluster"
	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
)

// TestControlPlaneOnMariaDB runs the production database: the control plane on a
// real MariaDB serves a chat, and its registry and keys are rows in MariaDB.
func TestControlPlaneOnMariaDB(t *testing.T) {
	t.Parallel()
	dsn, db, name := newMariaDB(t)

	_, simURL := startSim(t, enginesim.Config{Engine: enginesim.EngineVLLM, Models: []enginesim.ModelSpec{{Name: "m", ContextLength: 2048}}})
	c := cluster.Start(t, cluster.Options{
		Backends: []cluster.Backend{{Name: "vllm", Engine: "vllm", URL: simURL}},
		DBDriver: "mysql", DBDSN: dsn,
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client := openaiClient(c, c.AdminKey)
	resp, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model: "m", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}, MaxTokens: openai.Int(4),
	})
	require.NoError(t, err, c.Logs())
	require.EqualValues(t, 4, resp.Usage.CompletionTokens)

	var n int
	require.NoError(t, db.QueryRow("SELECT COUNT(*) FROM "+name+".backends").Scan(&n))
	require.Equal(t, 1, n, "the registry lives in MariaDB")
	require.NoError(t, db.QueryRow("SELECT COUNT(*) FROM "+name+".api_keys").Scan(&n))
	require.Equal(t, 1, n, "the seeded admin key lives in MariaDB")
}

// newMariaDB creates a database of the test's own on the shared MariaDB (dropped
// at cleanup) and returns its DSN, a connection to the server and its name.
func newMariaDB(t testing.TB) (string, *sql.DB, string) {
	t.Helper()
	base := os.Getenv("MINDROUTER_TEST_MARIADB_DSN")
	if base == "" {
		base = "root@tcp(127.0.0.1:3306)/"
	}
	db, err := sql.Open("mysql", base)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	if err := db.Ping(); err != nil {
		if os.Getenv("MINDROUTER_TEST_SKIP_MARIADB") == "1" {
			t.Skipf("MariaDB unreachable and MINDROUTER_TEST_SKIP_MARIADB=1: %v", err)
		}
		t.Fatalf("MariaDB at %s is required (set MINDROUTER_TEST_SKIP_MARIADB=1 to skip): %v", base, err)
	}
	name := fmt.Sprintf("mr_e2e_%d", time.Now().UnixNano())
	_, err = db.Exec("CREATE DATABASE " + name)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = db.Exec("DROP DATABASE " + name) })
	dsn := strings.TrimSuffix(base, "/") + "/" + name + "?parseTime=true"
	return dsn, db, name
}

// mariaDB returns the DSN of a fresh database of the test's own.
func mariaDB(t *testing.T) string {
	dsn, _, _ := newMariaDB(t)
	return dsn
}
