package alert_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/alert"
	"github.com/mindrouter/mindrouter/controlplane/internal/health"
	"github.com/mindrouter/mindrouter/controlplane/internal/health/healthtest"
	"github.com/mindrouter/mindrouter/controlplane/internal/registry"
	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	"github.com/mindrouter/mindrouter/controlplane/internal/store/storetest"
	adminv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/admin/v1"
)

// slack is a local webhook receiver that keeps the texts it got.
type slack struct {
	mu    sync.Mutex
	texts []string
	got   chan struct{}
}

func newSlack(t *testing.T) (*slack, *httptest.Server) {
	s := &slack{got: make(chan struct{}, 16)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var msg struct {
			Text string `json:"text"`
		}
		b, _ := io.ReadAll(r.Body)
		if r.Header.Get("Content-Type") != "application/json" || json.Unmarshal(b, &msg) != nil || msg.Text == "" {
			http.Error(w, "bad payload", http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.texts = append(s.texts, msg.Text)
		s.mu.Unlock()
		s.got <- struct{}{}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	return s, srv
}

func (s *slack) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.texts...)
}

func (s *slack) wait(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for len(s.all()) < n {
		select {
		case <-s.got:
		case <-deadline:
			t.Fatalf("webhook got %d messages, want %d: %q", len(s.all()), n, s.all())
		}
	}
}

// TestBackendDownRaisesListsAndClears stops a real (loopback) Ollama-shaped
// server behind a backend, so that the registry's real health probes fail; the
// evaluator raises backend_unhealthy, the AlertService lists it, the webhook
// receives one message; the server comes back on the same address, the alert is
// cleared and the webhook receives exactly one more.
func TestBackendDownRaisesListsAndClears(t *testing.T) {
	ctx := t.Context()
	st := storetest.SQLite(t)
	eng := healthtest.NewOllama(t, "0.17.4", healthtest.Model{Name: "tiny:latest", ContextLength: 2048})
	reg := registry.New(st, registry.Options{Prober: health.NewProber(nil, nil), UnhealthyThreshold: 2})
	require.NoError(t, reg.Load(ctx))
	b, _, err := reg.RegisterBackend(ctx, store.BackendSpec{Name: "gpu-1", URL: eng.URL(), Engine: "ollama"}, false)
	require.NoError(t, err)
	require.Equal(t, registry.StatusHealthy, b.Status)

	rx, hook := newSlack(t)
	wh := alert.NewWebhook(hook.URL, alert.WebhookOptions{Backoff: 10 * time.Millisecond})
	go func() { _ = wh.Run(ctx) }()
	source := func(context.Context) (alert.Snapshot, error) {
		return alert.Snapshot{Backends: reg.ListBackends()}, nil
	}
	ev := alert.NewEvaluator(st, source, alert.Options{Notifier: wh})
	svc := alert.NewService(st)

	require.NoError(t, ev.Evaluate(ctx))
	list, err := svc.ListAlerts(ctx, &adminv1.ListAlertsRequest{})
	require.NoError(t, err)
	require.Empty(t, list.GetAlerts())

	addr := strings.TrimPrefix(eng.URL(), "http://")
	eng.Close()
	for range 2 {
		_, _ = reg.RefreshBackend(ctx, b.ID)
	}
	b, err = reg.GetBackend(b.ID)
	require.NoError(t, err)
	require.Equal(t, registry.StatusUnhealthy, b.Status)
	require.NoError(t, ev.Evaluate(ctx))
	require.NoError(t, ev.Evaluate(ctx))
	rx.wait(t, 1)

	list, err = svc.ListAlerts(ctx, &adminv1.ListAlertsRequest{State: "active"})
	require.NoError(t, err)
	require.Len(t, list.GetAlerts(), 1)
	a := list.GetAlerts()[0]
	assert.Equal(t, alert.KindBackendUnhealthy, a.GetKind())
	assert.Equal(t, "backend/gpu-1", a.GetSubject())
	assert.Equal(t, alert.Critical, a.GetSeverity())
	assert.True(t, a.GetActive())
	assert.Nil(t, a.GetClearedAt())

	// The backend comes back on the same address.
	lis, err := listenOn(addr)
	require.NoError(t, err)
	back := httptest.NewUnstartedServer(eng.Handler())
	back.Listener.Close()
	back.Listener = lis
	back.Start()
	t.Cleanup(back.Close)
	b, err = reg.RefreshBackend(ctx, b.ID)
	require.NoError(t, err)
	require.Equal(t, registry.StatusHealthy, b.Status)
	require.NoError(t, ev.Evaluate(ctx))
	require.NoError(t, ev.Evaluate(ctx))
	rx.wait(t, 2)

	list, err = svc.ListAlerts(ctx, &adminv1.ListAlertsRequest{State: "active"})
	require.NoError(t, err)
	require.Empty(t, list.GetAlerts())
	list, err = svc.ListAlerts(ctx, &adminv1.ListAlertsRequest{State: "all"})
	require.NoError(t, err)
	require.Len(t, list.GetAlerts(), 1)
	assert.NotNil(t, list.GetAlerts()[0].GetClearedAt())
	assert.False(t, list.GetAlerts()[0].GetActive())

	time.Sleep(100 * time.Millisecond) // nothing more may arrive
	texts := rx.all()
	require.Len(t, texts, 2, "exactly one raise and one clear")
	assert.Contains(t, texts[0], "CRITICAL backend_unhealthy backend/gpu-1")
	assert.Contains(t, texts[1], "RESOLVED backend_unhealthy backend/gpu-1")

	_, err = svc.ListAlerts(ctx, &adminv1.ListAlertsRequest{State: "sometimes"})
	require.ErrorIs(t, err, store.ErrInvalid)
	_, err = svc.ListAlerts(ctx, &adminv1.ListAlertsRequest{Kind: "nope"})
	require.ErrorIs(t, err, store.ErrInvalid)
}

// listenOn binds addr again; the kernel may hold it briefly after the close.
func listenOn(addr string) (net.Listener, error) {
	var err error
	for range 50 {
		var lis net.Listener
		if lis, err = net.Listen("tcp", addr); err == nil {
			return lis, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, err
}
