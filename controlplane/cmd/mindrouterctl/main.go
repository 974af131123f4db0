// Command mindrouterctl administers a MindRouter control plane over gRPC: backends,
// nodes, models, users, groups, keys, quota requests, the queue and scheduling
// decisions. `mindrouterctl completion bash` prints shell completion.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/mindrouter/mindrouter/controlplane/internal/ctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := ctl.Main(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
