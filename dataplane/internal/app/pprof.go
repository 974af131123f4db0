package app

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"
)

// pprofHandler serves the runtime profiles under /debug/pprof/. It is its own
// mux, never http.DefaultServeMux, so that nothing else registered there is
// exposed with it.
func pprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// startPprof serves the profiles on addr, on a listener of its own so that
// profiling never shares the client port. stop closes it and waits for it.
func startPprof(addr string, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("pprof: listen on %s: %w", addr, err)
	}
	return servePprof(ln, log), nil
}

func servePprof(ln net.Listener, log *slog.Logger) (stop func()) {
	// No write timeout: a CPU profile or trace writes after ?seconds=N.
	srv := &http.Server{
		Handler:           pprofHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("serving pprof", slog.String("addr", ln.Addr().String()))
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Warn("pprof server stopped", slog.Any("error", err))
		}
	})
	return func() {
		_ = srv.Close()
		wg.Wait()
	}
}
