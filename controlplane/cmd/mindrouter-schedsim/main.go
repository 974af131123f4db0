// Command mindrouter-schedsim runs the fair-share scheduler simulation and prints
// a markdown report comparing WDRR with a FIFO baseline (make bench-scheduler).
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/mindrouter/mindrouter/controlplane/internal/fairshare/sim"
)

func main() {
	seed := flag.Uint64("seed", 1, "random seed; the same seed gives the same report")
	duration := flag.Duration("duration", time.Hour, "simulated time per scenario")
	flag.Parse()
	if err := run(*seed, *duration); err != nil {
		fmt.Fprintln(os.Stderr, "mindrouter-schedsim:", err)
		os.Exit(1)
	}
}

func run(seed uint64, duration time.Duration) error {
	if duration < time.Minute {
		return fmt.Errorf("duration %s: want at least 1m", duration)
	}
	cluster := sim.DefaultCluster()
	cmps, err := sim.Compare(cluster, sim.Scenarios(duration), seed)
	if err != nil {
		return err
	}
	return sim.WriteMarkdown(os.Stdout, cluster, seed, cmps)
}
