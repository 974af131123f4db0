package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// WebhookOptions configure a Webhook.
type WebhookOptions struct {
	// Client posts the messages; default one with a 10s timeout.
	Client *http.Client
	// Attempts per message (default 5), waiting Backoff, then twice as long each
	// time, up to MaxBackoff (defaults 1s and 30s).
	Attempts            int
	Backoff, MaxBackoff time.Duration
	// Queue is how many messages may wait (default 256); beyond it new ones are
	// dropped and counted, so that a dead webhook never holds up the evaluation.
	Queue      int
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Webhook posts each raise and clear to a URL as Slack-compatible JSON
// ({"text": "..."}), one message each, with retries. The URL may hold a secret
// (Slack's do): it is never logged.
type Webhook struct {
	url        string
	opts       WebhookOptions
	log        *slog.Logger
	queue      chan string
	deliveries *prometheus.CounterVec
}

// NewWebhook returns a Webhook posting to url; Run delivers its messages.
func NewWebhook(url string, opts WebhookOptions) *Webhook {
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if opts.Attempts <= 0 {
		opts.Attempts = 5
	}
	if opts.Backoff <= 0 {
		opts.Backoff = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 30 * time.Second
	}
	if opts.Queue <= 0 {
		opts.Queue = 256
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	w := &Webhook{url: url, opts: opts, log: opts.Logger, queue: make(chan string, opts.Queue)}
	w.deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mindrouter_alert_webhook_messages_total",
		Help: "Alert webhook messages, by result: sent, failed (every attempt failed) or dropped (queue full)."}, []string{"result"})
	for _, r := range []string{"sent", "failed", "dropped"} {
		w.deliveries.WithLabelValues(r)
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(w.deliveries)
	}
	return w
}

// Notify queues the event's message; it never blocks.
func (w *Webhook) Notify(ev Event) {
	select {
	case w.queue <- Text(ev):
	default:
		w.deliveries.WithLabelValues("dropped").Inc()
		w.log.Warn("alert webhook queue full: message dropped", slog.String("kind", ev.Alert.Kind), slog.String("subject", ev.Alert.Subject))
	}
}

// Text is the message of an event.
func Text(ev Event) string {
	a := ev.Alert
	if ev.Cleared {
		return fmt.Sprintf("[MindRouter] RESOLVED %s %s (raised %s, cleared %s)", a.Kind, a.Subject,
			a.FirstSeen.UTC().Format(time.RFC3339), a.ClearedAt.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("[MindRouter] %s %s %s: %s (since %s)", upper(a.Severity), a.Kind, a.Subject, a.Message,
		a.FirstSeen.UTC().Format(time.RFC3339))
}

func upper(s string) string { return string(bytes.ToUpper([]byte(s))) }

// Run delivers queued messages, in order, until ctx ends.
func (w *Webhook) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case text := <-w.queue:
			w.deliver(ctx, text)
		}
	}
}

func (w *Webhook) deliver(ctx context.Context, text string) {
	body, _ := json.Marshal(map[string]string{"text": text})
	wait := w.opts.Backoff
	var err error
	for attempt := 1; attempt <= w.opts.Attempts; attempt++ {
		if err = w.post(ctx, body); err == nil {
			w.deliveries.WithLabelValues("sent").Inc()
			return
		}
		if attempt == w.opts.Attempts {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, w.opts.MaxBackoff)
	}
	w.log.Warn("alert webhook message not delivered", slog.Int("attempts", w.opts.Attempts), slog.Any("error", err))
	w.deliveries.WithLabelValues("failed").Inc()
}

// post sends one message. Its errors never carry the URL, which may hold a secret.
func (w *Webhook) post(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build webhook request: invalid URL")
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.opts.Client.Do(req)
	if err != nil {
		return fmt.Errorf("post to webhook: %w", redact(err))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook answered %d", resp.StatusCode)
	}
	return nil
}

// redact drops the URL from a client error.
func redact(err error) error {
	if ue, ok := err.(interface{ Unwrap() error }); ok {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}
