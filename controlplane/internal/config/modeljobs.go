package config

import (
	"errors"
	"flag"
	"time"
)

// ModelJobs configures Ollama model pulls and deletes (docs/operations.md).
type ModelJobs struct {
	// PullAttempts is how many attempts a pull or delete gets.
	PullAttempts int
	// PullBackoff is the wait before the second attempt; it doubles before
	// each further one.
	PullBackoff time.Duration
	// PullReadTimeout bounds the silence of Ollama's pull stream.
	PullReadTimeout time.Duration
	// ProgressInterval is the least time between two progress writes.
	ProgressInterval time.Duration
}

func defaultModelJobs() ModelJobs {
	return ModelJobs{PullAttempts: 3, PullBackoff: 2 * time.Second, PullReadTimeout: 600 * time.Second, ProgressInterval: time.Second}
}

func (m *ModelJobs) register(fs *flag.FlagSet) {
	fs.IntVar(&m.PullAttempts, "model-pull-attempts", m.PullAttempts, "attempts an Ollama model pull or delete gets before it fails")
	fs.DurationVar(&m.PullBackoff, "model-pull-backoff", m.PullBackoff, "wait before a pull's second attempt; it doubles before each further one")
	fs.DurationVar(&m.PullReadTimeout, "model-pull-read-timeout", m.PullReadTimeout, "an attempt fails when Ollama's pull stream says nothing for this long")
	fs.DurationVar(&m.ProgressInterval, "model-job-progress-interval", m.ProgressInterval, "least time between two progress writes of a model job")
}

func (m ModelJobs) validate() []error {
	var errs []error
	if m.PullAttempts < 1 || m.PullAttempts > 20 {
		errs = append(errs, errors.New("model-pull-attempts must be 1 to 20"))
	}
	if m.PullBackoff < 100*time.Millisecond || m.PullBackoff > 10*time.Minute {
		errs = append(errs, errors.New("model-pull-backoff must be 100ms to 10m"))
	}
	if m.PullReadTimeout < time.Second {
		errs = append(errs, errors.New("model-pull-read-timeout must be at least 1s"))
	}
	if m.ProgressInterval < 100*time.Millisecond || m.ProgressInterval > time.Minute {
		errs = append(errs, errors.New("model-job-progress-interval must be 100ms to 1m"))
	}
	return errs
}
