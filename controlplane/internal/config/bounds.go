package config

import (
	"errors"
	"fmt"
	"time"
)

// minDuration is a duration flag's lower bound; why, when set, tells the
// operator the reason for it.
type minDuration struct {
	flag   string
	v, min time.Duration
	why    string
}

// belowMin returns the refusal of each flag below its bound:
// "<flag> must be at least <min> (<why>)".
func belowMin(bounds ...minDuration) []error {
	var errs []error
	for _, b := range bounds {
		if b.v >= b.min {
			continue
		}
		msg := fmt.Sprintf("%s must be at least %s", b.flag, shortDuration(b.min))
		if b.why != "" {
			msg += " (" + b.why + ")"
		}
		errs = append(errs, errors.New(msg))
	}
	return errs
}

// shortDuration writes d the way an operator types it: 90s, 1m, 1h rather
// than time.Duration's 1m30s, 1m0s, 1h0m0s.
func shortDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return d.String()
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	case d%time.Second == 0:
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return d.String()
}
