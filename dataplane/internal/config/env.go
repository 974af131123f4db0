package config

import (
	"errors"
	"flag"
	"fmt"
	"strings"
)

// The environment variable of every flag follows from its name:
// MINDROUTER_DP_<FLAG> (upper case, dashes as underscores), except the
// settings every binary shares, which are MINDROUTER_<FLAG>. docs/configuration.md
// lists them all.
const envPrefix = "MINDROUTER_DP_"

// sharedEnv are the flags whose variable has no binary prefix.
// MINDROUTER_CONTROLPLANE_ADDR keeps its name: deployments (compose, Helm)
// name the control planes by it.
var sharedEnv = map[string]bool{"cluster-token": true, "cluster-token-file": true, "log-format": true, "log-level": true,
	"controlplane-addr": true}

// renamedEnv maps the variables of the previous release to their flags. They are
// read, with a warning, when the new name is not set; they go in the next release.
var renamedEnv = map[string]string{
	"MINDROUTER_DP_CONTROLPLANE_ADDR": "controlplane-addr", "MINDROUTER_PPROF_LISTEN": "pprof-listen",
	"MINDROUTER_PPROF_ALLOW_REMOTE": "pprof-allow-remote",
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
