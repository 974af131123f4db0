package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mindrouter/mindrouter/controlplane/internal/config"
	"github.com/mindrouter/mindrouter/controlplane/internal/election"
	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

// errLostLeadership ends the process: it can no longer act, and a fresh start
// (by its supervisor) makes it a standby with a clean memory.
var errLostLeadership = errors.New("this control plane lost the leadership: exiting so that it restarts as a standby")

// standBy campaigns for the leadership. Until it wins, the REST port answers
// /healthz 200, /readyz 503 (naming the leader) and /metrics, and the gRPC port
// is not opened at all: data planes and node agents that list several control
// planes connect to whichever answers, which is the leader. It returns once
// this process leads, with the REST port closed again for the full server, or
// ctx's error.
func standBy(ctx context.Context, cfg config.Config, st *store.Store, gatherer prometheus.Gatherer, reg prometheus.Registerer, log *slog.Logger) (*election.Elector, error) {
	lead, err := election.New(st, election.Options{Holder: cfg.Advertise(), TTL: cfg.LeaderLeaseTTL, Logger: log, Registerer: reg})
	if err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", cfg.RESTListen)
	if err != nil {
		return nil, fmt.Errorf("listen REST: %w", err)
	}
	_, lis, err = secureListeners(config.Config{RESTTLSCertFile: cfg.RESTTLSCertFile, RESTTLSKeyFile: cfg.RESTTLSKeyFile}, nil, lis)
	if err != nil {
		lis.Close()
		return nil, err
	}
	srv := &http.Server{Handler: standbyHandler(lead, gatherer), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(lis)
	}()
	log.Info("control plane campaigning for leadership", "advertise", cfg.Advertise(), "rest", lis.Addr().String(), "ttl", cfg.LeaderLeaseTTL)
	err = lead.Campaign(ctx)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	<-served
	if err != nil {
		return nil, err
	}
	return lead, nil
}

// standbyHandler is the REST port of a standby.
func standbyHandler(lead *election.Elector, gatherer prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"status":"alive","role":"standby","timestamp":%q}`, time.Now().UTC().Format(time.RFC3339))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "standby", "leader": lead.Leader()})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{
			"code": "not_leader", "message": "this control plane stands by; use the leader", "leader": lead.Leader()}})
	})
	return mux
}
