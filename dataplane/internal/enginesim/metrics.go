package enginesim

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// engineMetrics are the live counters behind vLLM's /metrics, per model.
type engineMetrics struct {
	perModel map[string]*modelMetrics
}

type modelMetrics struct {
	running, waiting   int
	kvTokens           int64 // prompt + generated tokens of running requests
	prompt, generation int64
	success            map[string]int64 // by finished_reason
}

func (em *engineMetrics) model(name string) *modelMetrics {
	if em.perModel == nil {
		em.perModel = map[string]*modelMetrics{}
	}
	mm := em.perModel[name]
	if mm == nil {
		mm = &modelMetrics{success: map[string]int64{}}
		em.perModel[name] = mm
	}
	return mm
}

// job is one generation in progress.
type job struct {
	s         *Server
	m         *simModel
	prompt    int
	generated int
	stream    bool
	cold      bool // the model was not loaded before
	ended     bool
}

// admit waits for a generation slot for model m (MaxRunning) and registers
// the generation; stream marks a streaming response. It returns nil when
// ctx ends while waiting, after counting the request as cancelled.
func (s *Server) admit(ctx context.Context, m *simModel, prompt int, stream bool) *job {
	s.mu.Lock()
	mm := s.metrics.model(m.spec.Name)
	if stream {
		s.stats.ActiveStreams++
	}
	s.mu.Unlock()
	if s.slots != nil {
		s.mu.Lock()
		mm.waiting++
		s.stats.Waiting++
		s.mu.Unlock()
		acquired := false
		select {
		case s.slots <- struct{}{}:
			acquired = true
		case <-ctx.Done():
		}
		s.mu.Lock()
		mm.waiting--
		s.stats.Waiting--
		s.mu.Unlock()
		if !acquired {
			s.mu.Lock()
			s.stats.Cancelled++
			if stream {
				s.stats.ActiveStreams--
			}
			s.mu.Unlock()
			return nil
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	mm.running++
	mm.prompt += int64(prompt)
	mm.kvTokens += int64(prompt)
	s.stats.Running++
	cold := !m.loaded
	m.loaded = true
	return &job{s: s, m: m, prompt: prompt, stream: stream, cold: cold}
}

// token records one generated token.
func (j *job) token() {
	j.s.mu.Lock()
	defer j.s.mu.Unlock()
	j.generated++
	mm := j.s.metrics.model(j.m.spec.Name)
	mm.generation++
	mm.kvTokens++
}

// end finishes the generation with an OpenAI finish reason, "" when the
// client went away or "abort" when the simulator drops the connection. It is safe to call more than once.
func (j *job) end(finish string) {
	j.s.mu.Lock()
	if j.ended {
		j.s.mu.Unlock()
		return
	}
	j.ended = true
	mm := j.s.metrics.model(j.m.spec.Name)
	mm.running--
	mm.kvTokens -= int64(j.prompt + j.generated)
	st := &j.s.stats
	st.Running--
	if j.stream {
		st.ActiveStreams--
	}
	st.PromptTokens += int64(j.prompt)
	st.CompletionTokens += int64(j.generated)
	switch finish {
	case "":
		st.Cancelled++
		mm.success["abort"]++
	case "abort": // dropped on purpose
		mm.success["abort"]++
	case "length":
		mm.success["length"]++
	default: // vLLM's engine reports tool calls as a plain stop
		mm.success["stop"]++
	}
	j.s.mu.Unlock()
	if j.s.slots != nil {
		<-j.s.slots
	}
}

// kvCapacity is the notional KV cache of a model, in tokens: room for
// MaxRunning (or 4) full contexts.
func (s *Server) kvCapacity(m *simModel) float64 {
	slots := max(s.cfg.MaxRunning, 4)
	return float64(m.spec.ContextLength * slots)
}

// handleMetrics serves vLLM's Prometheus metrics. Names, help texts and
// labels follow vLLM's V1 engine (vllm/v1/metrics/loggers.py); counters
// are written as prometheus_client writes them, with _created samples
// disabled as vLLM does.
func (s *Server) handleMetrics(w http.ResponseWriter, _ *http.Request) {
	type family struct{ name, help, typ string }
	fams := []family{
		{"vllm:num_requests_running", "Number of requests in model execution batches.", "gauge"},
		{"vllm:num_requests_waiting", "Number of requests waiting to be processed.", "gauge"},
		{"vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", "gauge"},
		{"vllm:prompt_tokens_total", "Number of prefill tokens processed.", "counter"},
		{"vllm:generation_tokens_total", "Number of generation tokens processed.", "counter"},
		{"vllm:request_success_total", "Count of successfully processed requests.", "counter"},
	}
	s.mu.Lock()
	var b strings.Builder
	for _, f := range fams {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", f.name, f.help, f.name, f.typ)
		for _, m := range s.models {
			mm := s.metrics.model(m.spec.Name)
			labels := fmt.Sprintf(`model_name="%s",engine="0"`, promEscape(m.spec.Name))
			switch f.name {
			case "vllm:num_requests_running":
				writeSample(&b, f.name, labels, float64(mm.running))
			case "vllm:num_requests_waiting":
				writeSample(&b, f.name, labels, float64(mm.waiting))
			case "vllm:kv_cache_usage_perc":
				writeSample(&b, f.name, labels, min(1, float64(mm.kvTokens)/s.kvCapacity(m)))
			case "vllm:prompt_tokens_total":
				writeSample(&b, f.name, labels, float64(mm.prompt))
			case "vllm:generation_tokens_total":
				writeSample(&b, f.name, labels, float64(mm.generation))
			case "vllm:request_success_total":
				for _, reason := range []string{"stop", "length", "abort"} {
					writeSample(&b, f.name, labels+`,finished_reason="`+reason+`"`, float64(mm.success[reason]))
				}
			}
		}
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_, _ = w.Write([]byte(b.String()))
}

func writeSample(b *strings.Builder, name, labels string, v float64) {
	fmt.Fprintf(b, "%s{%s} %s\n", name, labels, pyFloat(v))
}

// pyFloat formats v as Python's repr does for the values used here
// ("3.0", "0.25").
func pyFloat(v float64) string {
	if v == float64(int64(v)) {
		return strconv.FormatInt(int64(v), 10) + ".0"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

func promEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}

// keepModel marks m loaded until keepAlive from now; a zero keepAlive
// unloads it, a negative one keeps it loaded forever.
func (s *Server) keepModel(m *simModel, keepAlive time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case keepAlive == 0:
		m.loaded, m.expires = false, time.Time{}
	case keepAlive < 0:
		m.loaded, m.expires = true, time.Time{}
	default:
		m.loaded, m.expires = true, time.Now().Add(keepAlive)
	}
}
