// Package config is the data plane's one configuration: defaults, then
// MINDROUTER_* environment variables, then command-line flags, validated at
// start with messages that tell the operator what to fix. It must not hold
// runtime policy (quotas, routing weights): the control plane owns those.
package config
