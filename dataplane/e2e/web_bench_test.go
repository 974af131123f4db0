package e2e

import (
	"io"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/e2e/internal/cluster"
	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
)

// BenchmarkWebPagesTenThousandUsers measures server-rendered page latency
// end to end — browser to data plane, data plane to control plane over gRPC,
// control plane to MariaDB — with 10,000 users in the database. Each sub-benchmark
// reports its p50 and p99 in milliseconds besides ns/op.
//
//	go test -run '^$' -bench BenchmarkWebPagesTenThousandUsers -benchtime 300x ./dataplane/e2e/
func BenchmarkWebPagesTenThousandUsers(b *testing.B) {
	dsn, db, name := newMariaDB(b)
	_, simURL := startSim(b, enginesim.Config{Engine: enginesim.EngineVLLM, Models: []enginesim.ModelSpec{{Name: "sim-chat", ContextLength: 4096}}})
	c := cluster.Start(b, cluster.Options{Backends: []cluster.Backend{{Name: "sim", Engine: "vllm", URL: simURL}}, DBDriver: "mysql", DBDSN: dsn})
	createUser(b, c, "ada", "admin")
	// MariaDB's sequence engine makes the 10,000 rows in one statement.
	_, err := db.Exec(`INSERT INTO ` + name + `.users (username, email, full_name, is_active, group_id, created_at, updated_at)
		SELECT CONCAT('bench', seq), CONCAT('bench', seq, '@example.edu'), CONCAT('Bench User ', seq), 1,
		(SELECT id FROM ` + name + `.` + "`groups`" + ` WHERE name = 'student'), NOW(), NOW() FROM ` + name + `.seq_1_to_10000`)
	require.NoError(b, err)

	br := newBrowser(b, c.DataPlaneURL)
	resp, _ := br.do("POST", "/login", url.Values{"username": {"ada"}, "password": {"correct horse battery"}, "next": {"/dashboard"}}, nil)
	require.Equal(b, http.StatusSeeOther, resp.StatusCode)

	for _, path := range []string{"/", "/models", "/dashboard", "/admin", "/admin/users", "/admin/backends", "/admin/queue"} {
		b.Run(path, func(b *testing.B) {
			var lat []time.Duration
			for b.Loop() {
				start := time.Now()
				req, _ := http.NewRequest("GET", c.DataPlaneURL+path, nil)
				req.Header.Set("Accept", "text/html")
				resp, err := br.http.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("%s: %d", path, resp.StatusCode)
				}
				lat = append(lat, time.Since(start))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}
