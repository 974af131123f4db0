package alert_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/alert"
	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

// TestWebhookRetriesWithBackoff: a receiver failing twice gets the message on the
// third attempt, once.
func TestWebhookRetriesWithBackoff(t *testing.T) {
	var calls atomic.Int32
	rx, hook := newSlack(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		hook.Config.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	reg := prometheus.NewPedanticRegistry()
	wh := alert.NewWebhook(srv.URL, alert.WebhookOptions{Backoff: 5 * time.Millisecond, Registerer: reg})
	go func() { _ = wh.Run(t.Context()) }()
	wh.Notify(alert.Event{Alert: store.Alert{Kind: alert.KindGPUTemperature, Subject: "gpu/n1/0", Severity: alert.Warning,
		Message: "hot", FirstSeen: time.Now()}})
	rx.wait(t, 1)
	assert.EqualValues(t, 3, calls.Load())
	require.Eventually(t, func() bool {
		return metricValue(t, reg, "mindrouter_alert_webhook_messages_total", "sent") == 1
	}, 5*time.Second, 10*time.Millisecond)
}

// TestWebhookNeverBlocksAndKeepsItsSecret: with the receiver down, Notify still
// returns at once (the queue drops beyond its size), and the logs never hold the
// URL, whose path is the secret.
func TestWebhookNeverBlocksAndKeepsItsSecret(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/services/T000/B000/s3cr3t-token"
	srv.Close()
	var logs bytes.Buffer
	reg := prometheus.NewPedanticRegistry()
	wh := alert.NewWebhook(url, alert.WebhookOptions{Attempts: 2, Backoff: time.Millisecond, Queue: 2,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), Registerer: reg})
	start := time.Now()
	for range 5 {
		wh.Notify(alert.Event{Alert: store.Alert{Kind: alert.KindNodeOffline, Subject: "node/n1", Severity: alert.Critical, FirstSeen: start}})
	}
	assert.Less(t, time.Since(start), time.Second)
	assert.InDelta(t, 3, metricValue(t, reg, "mindrouter_alert_webhook_messages_total", "dropped"), 0)
	go func() { _ = wh.Run(t.Context()) }()
	require.Eventually(t, func() bool {
		return metricValue(t, reg, "mindrouter_alert_webhook_messages_total", "failed") == 2
	}, 5*time.Second, 10*time.Millisecond)
	assert.NotContains(t, logs.String(), "s3cr3t")
	assert.Contains(t, logs.String(), "not delivered")
}
