//go:build !nvmlsim

package main

import "github.com/mindrouter/mindrouter/nodeagent/internal/app"

// nvmlOptions reads the system's NVML library (the nvmlsim build tag swaps in a
// simulated one for end-to-end tests).
func nvmlOptions() ([]app.Option, error) { return nil, nil }
