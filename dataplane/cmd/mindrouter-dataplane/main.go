// Command mindrouter-dataplane is MindRouter's stateless HTTP gateway: it
// speaks the clients' dialects, asks the control plane for admission and
// relays requests to the inference backends.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/mindrouter/mindrouter/dataplane/internal/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.Run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "mindrouter-dataplane:", err)
		os.Exit(1)
	}
}
