package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/openai/openai-go/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/e2e/internal/cluster"
	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
)

// Settings of the database outage test: every cache TTL short, so that an outage
// of a few seconds outlasts them all.
const (
	outageDBTimeout = time.Second
	outageKeyTTL    = 2 * time.Second
	outageLength    = 3 * outageKeyTTL
	// outageSlack is what a refusal may take beyond the database deadline on a
	// shared two-core test machine; a hang would take the whole outage.
	outageSlack = 3 * time.Second
)

// ownMariaDB is a MariaDB server of the test's own, in a temporary data
// directory on an ephemeral port, which the test can kill, restart, freeze and
// thaw.
type ownMariaDB struct {
	t       *testing.T
	bin     string
	dir     string
	port    string
	cmd     *exec.Cmd
	done    chan struct{}
	stopped bool
}

// startOwnMariaDB installs and starts a private MariaDB; it skips the test when
// the MariaDB server binaries are not installed.
func startOwnMariaDB(t *testing.T) *ownMariaDB {
	t.Helper()
	bin, err := exec.LookPath("mariadbd")
	if err != nil {
		bin = "/usr/sbin/mariadbd"
	}
	install, ierr := exec.LookPath("mariadb-install-db")
	if _, serr := os.Stat(bin); serr != nil || ierr != nil {
		t.Skip("mariadbd and mariadb-install-db are needed for the database outage test (apt-get install mariadb-server)")
	}
	m := &ownMariaDB{t: t, bin: bin, dir: t.TempDir()}
	args := []string{"--no-defaults", "--datadir=" + filepath.Join(m.dir, "data"), "--auth-root-authentication-method=normal", "--skip-test-db"}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	out, err := exec.Command(install, args...).CombinedOutput()
	require.NoError(t, err, "mariadb-install-db: %s", out)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	m.port = fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
	require.NoError(t, l.Close())
	m.start()
	t.Cleanup(func() {
		if !m.stopped {
			_ = m.cmd.Process.Signal(syscall.SIGCONT)
			_ = m.cmd.Process.Kill()
			<-m.done
		}
	})
	return m
}

// start runs mariadbd on the data directory and waits until it answers.
func (m *ownMariaDB) start() {
	m.t.Helper()
	args := []string{"--no-defaults", "--datadir=" + filepath.Join(m.dir, "data"), "--port=" + m.port,
		"--bind-address=127.0.0.1", "--socket=" + filepath.Join(m.dir, "sock"), "--pid-file=" + filepath.Join(m.dir, "pid"),
		"--skip-log-bin", "--innodb-buffer-pool-size=16M", "--log-error=" + filepath.Join(m.dir, "error.log")}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	m.cmd = exec.Command(m.bin, args...)
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	require.NoError(m.t, m.cmd.Start())
	m.done, m.stopped = make(chan struct{}), false
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(m.cmd, m.done)
	db, err := sql.Open("mysql", m.dsn(""))
	require.NoError(m.t, err)
	defer db.Close()
	deadline := time.Now().Add(60 * time.Second)
	for db.Ping() != nil {
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(m.dir, "error.log"))
			m.t.Fatalf("own MariaDB did not answer in 60s:\n%s", log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (m *ownMariaDB) dsn(dbName string) string {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr, cfg.DBName, cfg.ParseTime = "root", "tcp", "127.0.0.1:"+m.port, dbName, true
	return cfg.FormatDSN()
}

// kill stops the server with SIGKILL, as a crash would.
func (m *ownMariaDB) kill() {
	_ = m.cmd.Process.Kill()
	<-m.done
	m.stopped = true
}

func (m *ownMariaDB) freeze() { require.NoError(m.t, m.cmd.Process.Signal(syscall.SIGSTOP)) }
func (m *ownMariaDB) thaw()   { require.NoError(m.t, m.cmd.Process.Signal(syscall.SIGCONT)) }

// outageLoad sends chat completions with known keys until stopped and keeps the
// tokens served per user and every failure, with when it happened.
type outageLoad struct {
	mu       sync.Mutex
	tokens   map[int64]int64 // user id -> total tokens of successful answers
	ok       []time.Time
	failures []string
	stopped  chan struct{}
	wg       sync.WaitGroup
}

func startOutageLoad(c *cluster.Cluster, keys map[string]int64, tokens map[int64]int64) *outageLoad {
	l := &outageLoad{tokens: tokens, stopped: make(chan struct{})}
	running := func() bool {
		select {
		case <-l.stopped:
			return false
		default:
			return true
		}
	}
	for key, userID := range keys {
		client := openaiClient(c, key)
		l.wg.Go(func() {
			for running() {
				// A request in flight when the load stops runs to its end: a
				// cancelled one would still be charged its prompt and make the
				// usage comparison below disagree by that much.
				rctx, rcancel := context.WithTimeout(context.Background(), 30*time.Second)
				resp, err := client.Chat.Completions.New(rctx, openai.ChatCompletionNewParams{
					Model: "m", Messages: oaiUser("hello"), MaxTokens: openai.Int(4),
				})
				rcancel()
				now := time.Now()
				l.mu.Lock()
				if err == nil {
					l.tokens[userID] += resp.Usage.TotalTokens
					l.ok = append(l.ok, now)
				} else {
					l.failures = append(l.failures, now.Format(time.StampMilli)+" "+err.Error())
				}
				l.mu.Unlock()
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	return l
}

// stop ends the load and waits for the requests in flight.
func (l *outageLoad) stop() {
	close(l.stopped)
	l.wg.Wait()
}

// servedBetween counts the successful answers received in [from, to).
func (l *outageLoad) servedBetween(from, to time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, at := range l.ok {
		if !at.Before(from) && at.Before(to) {
			n++
		}
	}
	return n
}

// dialectRefusal is what a client of one dialect got.
type dialectRefusal struct {
	status     int
	retryAfter string
	body       string
	took       time.Duration
}

// postDialect sends a minimal request of each client dialect with key.
func postDialect(t *testing.T, c *cluster.Cluster, dialect, key string) dialectRefusal {
	t.Helper()
	req := map[string][2]string{ // path, body
		"ollama":    {"/api/chat", `{"model":"m","stream":false,"messages":[{"role":"user","content":"hi"}]}`},
		"anthropic": {"/v1/messages", `{"model":"m","max_tokens":4,"messages":[{"role":"user","content":"hi"}]}`},
		"openai":    {"/v1/chat/completions", `{"model":"m","max_tokens":4,"messages":[{"role":"user","content":"hi"}]}`},
	}[dialect]
	path, body := req[0], req[1]
	hreq, err := http.NewRequest(http.MethodPost, c.DataPlaneURL+path, strings.NewReader(body))
	require.NoError(t, err)
	hreq.Header.Set("Content-Type", "application/json")
	if dialect == "anthropic" {
		hreq.Header.Set("x-api-key", key)
		hreq.Header.Set("anthropic-version", "2023-06-01")
	} else {
		hreq.Header.Set("Authorization", "Bearer "+key)
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(hreq)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return dialectRefusal{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), body: string(raw), took: time.Since(start)}
}

// adminCall times one REST admin call at base (the control plane's REST port
// or the data plane's pass-through) and returns its status and Retry-After.
func adminCall(t *testing.T, c *cluster.Cluster, base, method, path string, body any) (int, string, time.Duration) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, base+path, rd)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+c.AdminKey)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Retry-After"), time.Since(start)
}

// TestDatabaseOutage runs a control plane on a MariaDB of the test's own, kills
// that database and later freezes it (SIGSTOP) under load, each time for longer
// than every cache TTL, and checks what each kind of caller gets meanwhile and
// that usage is exact once the database is back.
func TestDatabaseOutage(t *testing.T) {
	t.Parallel()
	maria := startOwnMariaDB(t)
	root, err := sql.Open("mysql", maria.dsn(""))
	require.NoError(t, err)
	defer root.Close()
	_, err = root.Exec("CREATE DATABASE mindrouter CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
	require.NoError(t, err)

	_, simURL := startSim(t, enginesim.Config{Engine: enginesim.EngineVLLM, Models: []enginesim.ModelSpec{{Name: "m", ContextLength: 2048}}})
	c := cluster.Start(t, cluster.Options{
		Backends: []cluster.Backend{{Name: "vllm", Engine: "vllm", URL: simURL}},
		DBDriver: "mysql", DBDSN: maria.dsn("mindrouter"),
		ControlPlaneArgs: []string{
			"-db-timeout", outageDBTimeout.String(), "-key-cache-ttl", outageKeyTTL.String(), "-key-cache-max-stale", "10m",
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// Two users with a key each in use, and a key never used before the outage.
	var groupID int64
	require.NoError(t, root.QueryRowContext(ctx, "SELECT id FROM mindrouter.`groups` WHERE name = 'staff'").Scan(&groupID))
	keys := map[string]int64{}
	newKey := func(name string) (string, int64) {
		var u struct {
			ID int64 `json:"id,string"`
		}
		status, err := c.AdminJSON(ctx, c.RESTURL, http.MethodPost, "/api/admin/users",
			map[string]any{"username": name, "email": name + "@example.edu", "password": "correct horse battery", "group_id": groupID}, &u)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, status)
		// No request-rate limit: the load runs as fast as it is answered.
		status, err = c.AdminJSON(ctx, c.RESTURL, http.MethodPatch, fmt.Sprintf("/api/admin/users/%d", u.ID), map[string]any{"rpm_limit": 0}, nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, status)
		var k struct {
			FullKey string `json:"full_key"`
		}
		status, err = c.AdminJSON(ctx, c.RESTURL, http.MethodPost, fmt.Sprintf("/api/admin/users/%d/api-keys", u.ID),
			map[string]any{"name": "load", "scopes": []string{"inference"}}, &k)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, status)
		return k.FullKey, u.ID
	}
	for _, name := range []string{"ada", "bo"} {
		key, id := newKey(name)
		keys[key] = id
	}
	unseen, _ := newKey("cy")
	unseenAfterKill, _ := newKey("di")
	// The admin key is read too, so admin calls fail on the database, not on
	// their credential.
	status, _, _ := adminCall(t, c, c.RESTURL, http.MethodGet, "/api/admin/users", nil)
	require.Equal(t, http.StatusOK, status)

	tokens := map[int64]int64{}
	for _, phase := range []struct {
		name          string
		fault, repair func()
		unseen        string
	}{
		{"killed", maria.kill, maria.start, unseen},
		{"frozen", maria.freeze, maria.thaw, unseenAfterKill},
	} {
		t.Run(phase.name, func(t *testing.T) {
			load := startOutageLoad(c, keys, tokens)
			time.Sleep(500 * time.Millisecond)
			start := time.Now()
			phase.fault()

			// Past every TTL: the keys in use keep working (checked below); a key
			// the control plane never read gets the database's unavailability in
			// each dialect, within the database deadline.
			time.Sleep(outageKeyTTL + 500*time.Millisecond)
			for dialect, wantStatus := range map[string]int{"openai": 503, "ollama": 503, "anthropic": 529} {
				r := postDialect(t, c, dialect, phase.unseen)
				assert.Equal(t, wantStatus, r.status, "%s: %s", dialect, r.body)
				assert.Equal(t, "5", r.retryAfter, dialect)
				assert.Contains(t, r.body, "database", dialect)
				assert.NotContains(t, r.body, "queue_timeout", dialect)
				assert.Less(t, r.took, outageDBTimeout+outageSlack, dialect)
				t.Logf("%s, never-seen key: %d in %s", dialect, r.status, r.took.Round(time.Millisecond))
			}
			unseenClient := openaiClient(c, phase.unseen)
			_, err := unseenClient.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
				Model: "m", Messages: oaiUser("hi"), MaxTokens: openai.Int(4),
			})
			var apiErr *openai.Error
			require.ErrorAs(t, err, &apiErr)
			assert.Equal(t, http.StatusServiceUnavailable, apiErr.StatusCode)
			assert.Equal(t, "database_unavailable", apiErr.Code)
			r := postDialect(t, c, "openai", cluster.NewKey(t))
			assert.Equal(t, http.StatusServiceUnavailable, r.status, "a key in no database cannot be told from one: %s", r.body)

			// Admin reads and writes answer 503 at once, not when the database returns.
			for _, call := range []struct {
				base, method, path string
				body               any
			}{
				{c.RESTURL, http.MethodGet, "/api/admin/users", nil},
				{c.RESTURL, http.MethodPost, "/api/admin/users", map[string]any{"username": "eve", "email": "eve@example.edu", "password": "correct horse battery", "group_id": groupID}},
				{c.DataPlaneURL, http.MethodGet, "/api/admin/api-keys", nil},
			} {
				status, retryAfter, took := adminCall(t, c, call.base, call.method, call.path, call.body)
				assert.Equal(t, http.StatusServiceUnavailable, status, call.method)
				assert.Equal(t, "5", retryAfter, call.method)
				assert.Less(t, took, outageDBTimeout+outageSlack, call.method)
				t.Logf("admin %s %s%s: %d in %s", call.method, call.base, call.path, status, took.Round(time.Millisecond))
			}

			time.Sleep(time.Until(start.Add(outageLength)))
			end := time.Now()
			phase.repair()
			time.Sleep(500 * time.Millisecond)
			load.stop()

			load.mu.Lock()
			failures := load.failures
			load.mu.Unlock()
			assert.Empty(t, failures[:min(len(failures), 5)], "known keys keep working through the outage (%d failures)", len(failures))
			pastTTL := load.servedBetween(start.Add(outageKeyTTL), end)
			t.Logf("database %s for %s (key cache TTL %s): %d requests served, %d after the TTL, %d failed",
				phase.name, end.Sub(start).Round(time.Millisecond), outageKeyTTL, load.servedBetween(start, end), pastTTL, len(failures))
			assert.Positive(t, pastTTL, "requests are served after the TTL ran out")

			// Once the database is back, the never-seen key works and the usage
			// rows equal the tokens served.
			require.Eventually(t, func() bool {
				return postDialect(t, c, "openai", phase.unseen).status == http.StatusOK
			}, 30*time.Second, 200*time.Millisecond, "the database is back")
			assertUsageRows(ctx, t, root, tokens)
		})
	}
}

// assertUsageRows waits for the control plane's usage flush and compares the
// quota rows with the tokens the load was served.
func assertUsageRows(ctx context.Context, t *testing.T, root *sql.DB, tokens map[int64]int64) {
	t.Helper()
	stored := map[int64]int64{}
	read := func() error {
		for id := range tokens {
			var used int64
			if err := root.QueryRowContext(ctx, "SELECT tokens_used FROM mindrouter.quotas WHERE user_id = ?", id).Scan(&used); err != nil {
				return err
			}
			stored[id] = used
		}
		return nil
	}
	deadline := time.Now().Add(40 * time.Second) // two usage flushes and then some
	for {
		err := read()
		if err == nil && fmt.Sprint(stored) == fmt.Sprint(tokens) {
			return
		}
		if time.Now().After(deadline) {
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				t.Fatalf("read usage rows: %v", err)
			}
			require.Equal(t, tokens, stored, "usage rows equal the tokens served")
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}
