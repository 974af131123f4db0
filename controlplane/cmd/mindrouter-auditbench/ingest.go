package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mindrouter/mindrouter/controlplane/internal/audit"
	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	auditv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/audit/v1"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
	"github.com/mindrouter/mindrouter/spool"
)

// ingestConfig drives the ingest benchmark: replicas data planes, each with
// one batch of batch records in flight (as the ingest stream sends them),
// for duration, through the control plane's audit writer into the store.
type ingestConfig struct {
	duration      time.Duration
	replicas      int
	batch         int
	artifactEvery int // one record in artifactEvery carries an image (0: none)
	dropIndexes   string
	textTables    int // measurement only: the text indexed in this many side tables (sidetext.go)
}

// runIngest times sustained ingest and prints records/s, the batch latency
// (p50, p99, max: the time a data plane waits for its acknowledgement) and
// the load average before and after.
func runIngest(ctx context.Context, st *store.Store, side *sideText, cfg ingestConfig) error {
	dir, err := os.MkdirTemp("", "mindrouter-auditbench-spool-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	sp, err := spool.Open(filepath.Join(dir, "spool"), 0)
	if err != nil {
		return err
	}
	w := audit.NewWriter(st, sp, audit.WriterOptions{ArtifactMaxBytes: 1 << 20})
	gen := newRecordGen()
	loadBefore := loadAvg()
	cpuBefore := cpuTime()
	var (
		records atomic.Int64
		mu      sync.Mutex
		lats    []time.Duration
		failed  error
		wg      sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(cfg.duration)
	for r := range cfg.replicas {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(r), uint64(start.UnixNano())))
			replica := fmt.Sprintf("dp-%d", r)
			for seq := uint64(1); time.Now().Before(deadline); seq++ {
				b := gen.batch(rng, replica, seq, cfg.batch, cfg.artifactEvery)
				t0 := time.Now()
				err := w.Write(ctx, b)
				if err == nil && side != nil {
					err = side.store(ctx, b.Records)
				}
				lat := time.Since(t0)
				mu.Lock()
				if err != nil && failed == nil {
					failed = err
				}
				lats = append(lats, lat)
				mu.Unlock()
				if err != nil {
					return
				}
				records.Add(int64(len(b.Records)))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := cpuTime() - cpuBefore
	if failed != nil {
		return fmt.Errorf("ingest: %w", failed)
	}
	if n, _ := sp.Len(); n > 0 {
		return fmt.Errorf("ingest: %d batches went to the spool (the database failed)", n)
	}
	stored, err := st.CountAuditRecords(ctx, store.AuditFilter{})
	if err != nil {
		return err
	}
	if int64(stored) != records.Load() {
		return fmt.Errorf("ingest: %d records acknowledged, %d stored", records.Load(), stored)
	}
	if side != nil {
		var texts int64
		for k := range side.queues {
			var n int64
			if err := side.db.QueryRowContext(ctx, fmt.Sprintf("SELECT COUNT(*) FROM audit_texts_%d", k)).Scan(&n); err != nil {
				return err
			}
			texts += n
		}
		if texts != records.Load() {
			return fmt.Errorf("ingest: %d records acknowledged, %d texts in the side tables", records.Load(), texts)
		}
	}
	slices.Sort(lats)
	pct := func(p float64) time.Duration { return lats[min(len(lats)-1, int(p*float64(len(lats))))] }
	fmt.Printf("| %d | %d | %s | %d | %.0f | %s | %s | %s | %.0f µs | %s → %s |\n",
		cfg.replicas, cfg.batch, elapsed.Round(time.Second), records.Load(), float64(records.Load())/elapsed.Seconds(),
		round(pct(0.50)), round(pct(0.99)), round(lats[len(lats)-1]),
		float64(cpu.Microseconds())/float64(records.Load()), loadBefore, loadAvg())
	return nil
}

func ingestHeader() {
	fmt.Println("| replicas | records per batch | ran | records stored | records/s | batch p50 | batch p99 | batch max | bench CPU per record | load average (1, 5, 15 min) before → after |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|")
}

// cpuTime is the CPU time this process has used (user and system): the
// writer's share of the work, the records' generation included.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadAvg is /proc/loadavg's first three fields ("?" where there is none).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "?"
}

// recordGen makes records like a chat client's: a request body of a few KB
// (a system prompt and a conversation), the prompt's text, an answer of a
// paragraph or two, a few tool calls now and then, and an image on some.
type recordGen struct {
	texts   []string // paragraphs of words drawn from a vocabulary
	image   []byte   // an image's worth of bytes; each artifact varies its head
	counter atomic.Int64
}

func newRecordGen() *recordGen {
	rng := rand.New(rand.NewPCG(1, 2))
	vocab := make([]string, 6000)
	common := []string{"the", "model", "explain", "please", "answer", "student", "function", "data", "value", "example"}
	for i := range vocab {
		if i < len(common) {
			vocab[i] = common[i]
			continue
		}
		n := 4 + rng.IntN(8)
		var b strings.Builder
		for range n {
			b.WriteByte(byte('a' + rng.IntN(26)))
		}
		vocab[i] = b.String()
	}
	g := &recordGen{image: make([]byte, 48<<10)}
	for range 256 {
		var b strings.Builder
		for b.Len() < 400+rng.IntN(1600) {
			// Zipf-like: common words often, the long tail rarely.
			w := vocab[min(len(vocab)-1, int(rng.ExpFloat64()*400))]
			b.WriteString(w)
			b.WriteByte(' ')
		}
		g.texts = append(g.texts, b.String())
	}
	for i := range g.image {
		g.image[i] = byte(rng.IntN(256))
	}
	return g
}

func (g *recordGen) batch(rng *rand.Rand, replica string, seq uint64, n, artifactEvery int) *controlplanev1.IngestRequest {
	b := &controlplanev1.IngestRequest{Seq: seq, ReplicaId: replica}
	models := []string{"llama3", "qwen3", "mistral", "phi4"}
	for range n {
		i := g.counter.Add(1)
		prompt := g.texts[rng.IntN(len(g.texts))]
		answer := g.texts[rng.IntN(len(g.texts))] + g.texts[rng.IntN(len(g.texts))]
		r := &auditv1.Record{
			RequestId: fmt.Sprintf("req-%s-%012d", replica, i), CreatedAt: timestamppb.Now(),
			UserId: int64(1 + rng.IntN(1000)), Username: fmt.Sprintf("user%d", rng.IntN(1000)), ApiKeyId: int64(1 + rng.IntN(3000)),
			Group: "", Surface: "openai", Endpoint: "/v1/chat/completions", Model: models[rng.IntN(len(models))],
			BackendIds: []int64{int64(1 + rng.IntN(8))}, Status: "completed", StatusCode: 200, Streaming: rng.IntN(2) == 0,
			RequestJson: `{"model":"llama3","stream":true,"messages":[{"role":"system","content":"You are a helpful teaching assistant for the university."},{"role":"user","content":"` +
				prompt + `"}],"temperature":0.7,"max_tokens":1024}`,
			PromptText: prompt, ResponseText: answer, FinishReason: "stop",
			PromptTokens: int64(len(prompt) / 4), CompletionTokens: int64(len(answer) / 4),
			QueueWaitMs: int64(rng.IntN(20)), TtftMs: int64(50 + rng.IntN(400)), TotalMs: int64(500 + rng.IntN(9000)),
			ClientIp: "10.1.2.3", UserAgent: "OpenAI/Python 1.54.0",
		}
		if rng.IntN(10) == 0 {
			r.Reasoning = g.texts[rng.IntN(len(g.texts))]
			r.ToolCallsJson = `[{"id":"call_1","type":"function","function":{"name":"lookup","arguments":"{\"q\":\"entropy\"}"}}]`
		}
		if artifactEvery > 0 && i%int64(artifactEvery) == 0 {
			img := slices.Clone(g.image[:8<<10+rng.IntN(40<<10)])
			copy(img, fmt.Sprintf("%016d", i))
			sum := sha256.Sum256(img)
			h := hex.EncodeToString(sum[:])
			r.ArtifactHashes = []string{h}
			b.Artifacts = append(b.Artifacts, &auditv1.Artifact{Sha256: h, ContentType: "image/png", SizeBytes: int64(len(img)), Data: img})
		}
		b.Records = append(b.Records, r)
	}
	return b
}
