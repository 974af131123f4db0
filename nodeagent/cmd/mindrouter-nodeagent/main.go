// Command mindrouter-nodeagent runs on a GPU server: it reads NVML and streams samples to
// the MindRouter control plane. See docs/configuration.md for its flags.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/mindrouter/mindrouter/nodeagent/internal/app"
)

func main() {
	opts, err := nvmlOptions()
	if err == nil {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err = app.Run(ctx, os.Args[1:], os.Stdout, os.Stderr, opts...)
		stop()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mindrouter-nodeagent:", err)
		os.Exit(1)
	}
}
