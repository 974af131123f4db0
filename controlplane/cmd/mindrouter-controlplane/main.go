// Command mindrouter-controlplane runs the control plane: the one owner of state and
// decisions (identities, registry, admission, telemetry), serving gRPC and a REST admin API.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/mindrouter/mindrouter/controlplane/internal/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.Run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "mindrouter-controlplane:", err)
		os.Exit(1)
	}
}
