// Package alert watches the fleet and keeps its alerts: backends unhealthy, nodes
// offline or silent, circuits open, GPUs over their temperature threshold and
// data-plane audit spools filling. The Evaluator compares what it sees on each round
// with the alerts it holds, raises new ones, keeps the held ones fresh and clears
// the ones whose condition ended, in the database; each raise and clear is handed to
// a Notifier (the Webhook posts Slack-compatible JSON). It runs on the leading
// control plane only (the app starts it after winning the election). It must not
// change the fleet: it only reads the registry, the nodes, the telemetry and the
// replicas' heartbeats.
package alert
