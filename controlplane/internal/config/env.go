package config

import (
	"errors"
	"flag"
	"fmt"
	"strings"
)

// The environment variable of every flag follows from its name:
// MINDROUTER_CP_<FLAG> (upper case, dashes as underscores), except the
// settings every binary shares, which are MINDROUTER_<FLAG>. docs/configuration.md
// lists them all.
const envPrefix = "MINDROUTER_CP_"

// sharedEnv are the flags whose variable has no binary prefix.
// The leader-election settings are named like those of the deployment
// contract (MINDROUTER_LEADER_ELECTION, MINDROUTER_LEADER_LEASE_TTL,
// MINDROUTER_ADVERTISE_ADDR): only the control plane has them.
var sharedEnv = map[string]bool{"cluster-token": true, "cluster-token-file": true, "log-format": true, "log-level": true,
	"leader-election": true, "leader-lease-ttl": true, "advertise-addr": true}

// renamedEnv maps the variables of the previous release to their flags. They are
// read, with a warning, when the new name is not set; they go in the next release.
var renamedEnv = map[string]string{
	"MINDROUTER_DATA_DIR": "data-dir", "MINDROUTER_DB_DRIVER": "db-driver", "MINDROUTER_DB_DSN": "db-dsn",
	"MINDROUTER_ADMIN_API_KEY": "admin-api-key", "MINDROUTER_SEED_BACKENDS": "seed-backends",
	"MINDROUTER_CONTEXT_CAP": "context-cap", "MINDROUTER_LEASE_TTL": "lease-ttl", "MINDROUTER_SESSION_GRACE": "session-grace",
	"MINDROUTER_HEARTBEAT_INTERVAL": "heartbeat-interval", "MINDROUTER_QUEUE_TIMEOUT": "queue-timeout",
	"MINDROUTER_MAX_QUEUE": "max-queue", "MINDROUTER_MAX_QUEUE_PER_USER": "max-queue-per-user",
	"MINDROUTER_MAX_CONCURRENT_PER_USER": "max-concurrent-per-user", "MINDROUTER_QUOTA_PERIOD": "quota-period",
	"MINDROUTER_DEFAULT_MAX_TOKENS": "default-max-tokens", "MINDROUTER_SCHEDULER": "scheduler",
	"MINDROUTER_HEALTH_INTERVAL": "health-interval", "MINDROUTER_TELEMETRY_INTERVAL": "telemetry-interval",
	"MINDROUTER_SHUTDOWN_TIMEOUT": "shutdown-timeout",
}

// EnvName is the environment variable that sets flag name.
func EnvName(name string) string {
	v := strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	if sharedEnv[name] {
		return "MINDROUTER_" + v
	}
	return envPrefix + v
}

// Deprecation is an old environment variable that was read in place of its new name.
type Deprecation struct {
	Old, New string
}

// applyEnv sets every flag of fs from its environment variable (an empty value
// counts as unset), or else from the variable's old name, and adds the variable's
// name to the flag's help. It reports every malformed value at once.
func applyEnv(fs *flag.FlagSet, lookupEnv func(string) (string, bool)) ([]Deprecation, error) {
	old := make(map[string]string, len(renamedEnv))
	for o, f := range renamedEnv {
		old[f] = o
	}
	var deprecated []Deprecation
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		name := EnvName(f.Name)
		f.Usage += " (env " + name + ")"
		v, ok := lookupEnv(name)
		if !ok || v == "" {
			o := old[f.Name]
			if o == "" {
				return
			}
			if v, ok = lookupEnv(o); !ok || v == "" {
				return
			}
			deprecated = append(deprecated, Deprecation{Old: o, New: name})
			name = o
		}
		if err := f.Value.Set(v); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", name, v, err))
		}
	})
	return deprecated, errors.Join(errs...)
}
