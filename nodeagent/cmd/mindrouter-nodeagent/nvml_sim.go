//go:build nvmlsim

package main

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"

	"github.com/mindrouter/mindrouter/nodeagent/internal/app"
	"github.com/mindrouter/mindrouter/nodeagent/internal/nvmltest"
)

// simPowerEnv describes the power trace the simulated GPUs play:
// "EPOCH_UNIX_MS,BASE,STEP,AMPLITUDE,PERIOD_S" makes GPU i draw
// BASE + STEP·i + AMPLITUDE·sin(2π(t − EPOCH)/PERIOD) watts at time t.
const simPowerEnv = "MINDROUTER_NVMLSIM_POWER"

// nvmlOptions, in a binary built with the nvmlsim tag (end-to-end tests only:
// the energy proof in docs/energy.md), makes the agent read go-nvml's fake DGX
// H100 whose GPUs play the trace MINDROUTER_NVMLSIM_POWER describes, instead of
// the system's NVML library.
func nvmlOptions() ([]app.Option, error) {
	spec := os.Getenv(simPowerEnv)
	f := strings.Split(spec, ",")
	if len(f) != 5 {
		return nil, fmt.Errorf("%s=%q: want EPOCH_UNIX_MS,BASE,STEP,AMPLITUDE,PERIOD_S", simPowerEnv, spec)
	}
	epochMS, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%s: epoch: %w", simPowerEnv, err)
	}
	var p [4]float64
	for k := range p {
		if p[k], err = strconv.ParseFloat(f[k+1], 64); err != nil {
			return nil, fmt.Errorf("%s: field %d: %w", simPowerEnv, k+2, err)
		}
	}
	if p[3] <= 0 {
		return nil, fmt.Errorf("%s: the period must be positive", simPowerEnv)
	}
	epoch := time.UnixMilli(epochMS)
	srv := nvmltest.Instrument(dgxh100.New(), nvmltest.DefaultReadings)
	for i, d := range srv.Devices {
		dev := d.(*server.Device)
		dev.GetPowerUsageFunc = func() (uint32, nvml.Return) {
			s := time.Since(epoch).Seconds()
			w := p[0] + p[1]*float64(i) + p[2]*math.Sin(2*math.Pi*s/p[3])
			return uint32(math.Round(max(w, 0) * 1000)), nvml.SUCCESS
		}
	}
	return []app.Option{app.WithNVML(srv)}, nil
}
