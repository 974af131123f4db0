package server

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/textproto"
	"runtime/debug"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/requestid"
)

// recorder remembers the status a handler wrote. It unwraps for
// http.ResponseController, so flushing and deadlines reach the connection.
type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Flush flushes the underlying writer (for code that type-asserts http.Flusher).
func (r *recorder) Flush() {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	_ = http.NewResponseController(r.ResponseWriter).Flush()
}

// Unwrap returns the underlying writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// requestID keeps a sane client X-Request-ID or mints one, echoes it, and puts
// it in the request's context with a gateway-minted unique id.
// requestIDKey is requestid.Header as net/http keys it: spelt so, reading and
// setting it skip canonicalising the name (a copy per call).
var requestIDKey = textproto.CanonicalMIMEHeaderKey(requestid.Header)

func requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, unique := r.Header.Get(requestIDKey), requestid.New()
		if !requestid.Valid(id) {
			id = unique
			// Handlers that forward headers (the admin gateway) pass it on.
			r.Header[requestIDKey] = []string{id}
		}
		w.Header()[requestIDKey] = []string{id}
		next.ServeHTTP(w, r.WithContext(requestid.NewContext(r.Context(), id, unique)))
	})
}

// recoverPanics turns a handler's panic into a 500 in the path's dialect (or,
// when the response already started, an aborted connection), logs it with its
// stack and counts it. The process keeps serving.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &recorder{ResponseWriter: w}
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			if p == http.ErrAbortHandler { //nolint:errorlint // sentinel panic value, compared as net/http does
				panic(p)
			}
			s.metrics.panics.Inc()
			s.opts.Log.ErrorContext(r.Context(), "handler panicked", slog.String("request_id", requestid.FromContext(r.Context())),
				slog.String("path", r.URL.Path), slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
			if rec.status != 0 {
				panic(http.ErrAbortHandler)
			}
			s.writeError(rec, r, &canonical.Error{Kind: canonical.KindInternal, Message: "Internal server error",
				Err: fmt.Errorf("panic: %v", p)})
		}()
		next.ServeHTTP(rec, r)
	})
}

// access counts requests and their durations by route and status.
func (s *Server) access(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := s.opts.Now()
		rec := &recorder{ResponseWriter: w}
		defer func() {
			route := r.Pattern
			if route == "" || route == "/" {
				route = "unmatched"
			}
			status := rec.status
			if status == 0 {
				status = 499 // the handler wrote nothing: the client went away
			}
			o := s.metrics.route(route, status)
			o.requests.Inc()
			o.seconds.Observe(s.opts.Now().Sub(start).Seconds())
		}()
		next.ServeHTTP(rec, r)
	})
}

type metrics struct {
	requests *prometheus.CounterVec
	seconds  *prometheus.HistogramVec
	panics   prometheus.Counter
	// byRoute caches the curried series of each (route, status) seen, a
	// routeKey → *routeSeries: routes are the mux's patterns and statuses
	// HTTP's, so it stays small, and a request costs one map read instead of
	// two label lookups (each hashing its labels under the vector's lock) and
	// a status string.
	byRoute sync.Map
}

type routeKey struct {
	route  string
	status int
}

type routeSeries struct {
	requests prometheus.Counter
	seconds  prometheus.Observer
}

// route returns the series of a route pattern and status.
func (m *metrics) route(route string, status int) *routeSeries {
	k := routeKey{route, status}
	if o, ok := m.byRoute.Load(k); ok {
		return o.(*routeSeries)
	}
	o, _ := m.byRoute.LoadOrStore(k, &routeSeries{
		requests: m.requests.WithLabelValues(route, strconv.Itoa(status)),
		seconds:  m.seconds.WithLabelValues(route),
	})
	return o.(*routeSeries)
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mindrouter_dp_http_requests_total",
			Help: "HTTP requests by route pattern and status.",
		}, []string{"route", "status"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mindrouter_dp_http_request_seconds",
			Help:    "HTTP request durations by route pattern (streams until their end).",
			Buckets: []float64{.005, .01, .05, .1, .5, 1, 5, 30, 120, 600},
		}, []string{"route"}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mindrouter_dp_http_panics_total",
			Help: "Handler panics recovered.",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.seconds, m.panics} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register server metrics: %w", err)
		}
	}
	return m, nil
}
