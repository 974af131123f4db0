package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// agentBuild is a node agent binary built once per test process.
type agentBuild struct {
	once sync.Once
	bin  string
	err  error
}

var agent, simAgent agentBuild

// get builds the agent with tags as file name in the Binaries directory, once.
func (b *agentBuild) get(name, tags string) (string, error) {
	b.once.Do(func() {
		dir, err := Binaries()
		if err != nil {
			b.err = err
			return
		}
		b.bin = filepath.Join(dir, name)
		b.err = goBuildTags(name, b.bin, tags, "./nodeagent/cmd/mindrouter-nodeagent")
	})
	return b.bin, b.err
}

// NodeAgentBinary builds mindrouter-nodeagent once per test process (apart from
// Binaries: it needs cgo for NVML, and most tests have no use for it) and returns
// its path. It lands in the same temporary directory, which Cleanup removes.
func NodeAgentBinary() (string, error) { return agent.get("mindrouter-nodeagent", "") }

// SimNodeAgentBinary builds mindrouter-nodeagent with the nvmlsim build tag once
// per test process: it reads go-nvml's fake DGX H100 (8 GPUs) instead of the
// system's NVML, the GPUs playing the power trace of MINDROUTER_NVMLSIM_POWER
// (see StartSimNodeAgent).
func SimNodeAgentBinary() (string, error) {
	return simAgent.get("mindrouter-nodeagent-nvmlsim", "nvmlsim")
}

// NodeAgent is a running node agent.
type NodeAgent struct {
	// MetricsURL is the base URL of its /metrics and /healthz.
	MetricsURL string
	p          *proc
}

// StartNodeAgent starts a node agent reporting to the cluster's control plane as
// node name with secret (register the node first), serving its metrics on a free
// port. Without a GPU driver it reports host-only samples. It stops at t.Cleanup.
func (c *Cluster) StartNodeAgent(name, secret string) *NodeAgent {
	c.t.Helper()
	bin, err := NodeAgentBinary()
	if err != nil {
		c.t.Fatalf("e2e: %v", err)
	}
	return c.startNodeAgent(bin, name, secret, nil)
}

// StartSimNodeAgent is StartNodeAgent with the simulated-NVML agent
// (SimNodeAgentBinary): a fake DGX H100 whose GPU i draws
// base + step·i + amplitude·sin(2π(t − epoch)/period) watts at time t.
func (c *Cluster) StartSimNodeAgent(name, secret string, epoch time.Time, base, step, amplitude float64, period time.Duration) *NodeAgent {
	c.t.Helper()
	bin, err := SimNodeAgentBinary()
	if err != nil {
		c.t.Fatalf("e2e: %v", err)
	}
	power := fmt.Sprintf("MINDROUTER_NVMLSIM_POWER=%d,%g,%g,%g,%g", epoch.UnixMilli(), base, step, amplitude, period.Seconds())
	return c.startNodeAgent(bin, name, secret, []string{power})
}

func (c *Cluster) startNodeAgent(bin, name, secret string, env []string) *NodeAgent {
	c.t.Helper()
	secretFile := filepath.Join(c.dataDir, name+".secret")
	if err := os.WriteFile(secretFile, []byte(secret), 0o600); err != nil {
		c.t.Fatal(err)
	}
	port := freePort(c.t)
	a := &NodeAgent{MetricsURL: "http://127.0.0.1:" + port}
	a.p = startProcEnv(c.t, bin, []string{
		"-control-plane", c.GRPCAddr, "-node-name", name, "-secret-file", secretFile,
		"-metrics-addr", "127.0.0.1:" + port, "-interval", "1s", "-log-format", "json", "-log-level", "debug",
	}, filepath.Join(c.dataDir, name+"-agent.log"), append([]string{"MINDROUTER_AGENT_SECRET="}, env...))
	waitHTTP(c.t, a.MetricsURL+"/healthz", a.p, false)
	return a
}

// Log returns the agent's log.
func (a *NodeAgent) Log() string { return a.p.log() }
