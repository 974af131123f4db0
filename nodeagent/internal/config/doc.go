// Package config holds the node agent's one configuration struct: defaults, then
// MINDROUTER_AGENT_* environment variables, then command-line flags, validated at start
// with messages that say what to fix.
//
// It must not open connections or start anything; it only reads the secret file when
// asked (ResolveSecret), and it never prints the secret (Config.LogValue redacts it).
package config
