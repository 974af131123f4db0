package web

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io/fs"
	"math"
	"net/http"
	"path"
	"strings"
	"sync"

	"github.com/mindrouter/mindrouter/dataplane/internal/cpclient"
)

type statusData struct {
	S               cpclient.ClusterStatus
	ModelsAvailable int
	Healthy         bool
	Problem         string
}

func newStatusData(s cpclient.ClusterStatus) statusData {
	d := statusData{S: s, Healthy: true}
	for _, m := range s.Models {
		if m.HealthyBackends > 0 {
			d.ModelsAvailable++
		}
	}
	var problems []string
	if down := s.BackendsTotal - s.BackendsHealthy - s.BackendsDisabled - s.BackendsDraining; down > 0 {
		problems = append(problems, fmt.Sprintf("%d backend(s) unhealthy", down))
	}
	if s.CircuitsOpen > 0 {
		problems = append(problems, fmt.Sprintf("%d circuit(s) open", s.CircuitsOpen))
	}
	if s.NodesTotal > s.NodesOnline {
		problems = append(problems, fmt.Sprintf("%d node(s) offline", s.NodesTotal-s.NodesOnline))
	}
	if s.BackendsTotal > 0 && s.BackendsHealthy == 0 {
		problems = append([]string{"No backend is serving"}, problems...)
	}
	if len(problems) > 0 {
		d.Healthy, d.Problem = false, "Degraded: "+strings.Join(problems, ", ")+"."
	}
	return d
}

func (h *Handler) status(w http.ResponseWriter, r *http.Request) {
	me := h.optionalMe(r)
	s, err := h.cp.Status(r.Context())
	if err != nil {
		h.fail(w, r, me, err)
		return
	}
	h.render(w, r, http.StatusOK, "status", page{Title: "Cluster status", Nav: "status", Me: me, Data: newStatusData(s)})
}

func (h *Handler) models(w http.ResponseWriter, r *http.Request) {
	me := h.optionalMe(r)
	s, err := h.cp.Status(r.Context())
	if err != nil {
		h.fail(w, r, me, err)
		return
	}
	h.render(w, r, http.StatusOK, "models", page{Title: "Model catalog", Nav: "models", Me: me, Data: s})
}

// statusJSON feeds the status page's live counters.
func (h *Handler) statusJSON(w http.ResponseWriter, r *http.Request) {
	s, err := h.cp.Status(r.Context())
	if err != nil {
		writeJSON(w, cpclient.HTTPStatus(err), map[string]string{"error": err.Error()})
		return
	}
	d := newStatusData(s)
	writeJSON(w, http.StatusOK, map[string]any{
		"backends_healthy": s.BackendsHealthy, "backends_total": s.BackendsTotal, "models_available": d.ModelsAvailable,
		"tokens_today": s.TokensToday, "tokens_total": s.TokensTotal, "tokens_per_second": fmt.Sprintf("%.1f", s.TokensPerSecond),
		"queued": s.Queued, "in_flight": s.InFlight, "healthy": d.Healthy,
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func budgetText(n int64) string {
	if n <= 0 {
		return "unlimited"
	}
	return fmt.Sprint(n)
}

func limitText(n int64) string {
	if n <= 0 {
		return "none"
	}
	return fmt.Sprint(n)
}

func percentUsed(u cpclient.Usage) int {
	if u.TokenBudget <= 0 {
		return 0
	}
	return int(math.Min(100, math.Round(100*float64(u.TokensUsed)/float64(u.TokenBudget))))
}

// staticFiles serves the embedded files, gzipped for browsers that accept it
// (compressed once, on first use), cached for a day: the pages link them with
// ?v=version.
func staticFiles(files fs.FS) http.Handler {
	plain := http.FileServerFS(files)
	var mu sync.Mutex
	gz := map[string][]byte{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=86400")
		name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
		if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			plain.ServeHTTP(w, r)
			return
		}
		mu.Lock()
		body, ok := gz[name]
		mu.Unlock()
		if !ok {
			raw, err := fs.ReadFile(files, name)
			if err != nil {
				plain.ServeHTTP(w, r)
				return
			}
			var buf strings.Builder
			zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
			_, _ = zw.Write(raw)
			_ = zw.Close()
			body = []byte(buf.String())
			mu.Lock()
			gz[name] = body
			mu.Unlock()
		}
		switch path.Ext(name) {
		case ".css":
			w.Header().Set("Content-Type", "text/css; charset=utf-8")
		case ".js":
			w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		}
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Vary", "Accept-Encoding")
		_, _ = w.Write(body)
	})
}
