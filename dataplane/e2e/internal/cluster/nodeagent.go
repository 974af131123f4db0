package cluster

import (
	"os"
	"path/filepath"
	"sync"
)

var (
	agentOnce sync.Once
	agentBin  string
	agentErr  error
)

// NodeAgentBinary builds mindrouter-nodeagent once per test process (apart from
// Binaries: it needs cgo for NVML, and most tests have no use for it) and returns
// its path. It lands in the same temporary directory, which Cleanup removes.
func NodeAgentBinary() (string, error) {
	agentOnce.Do(func() {
		dir, err := Binaries()
		if err != nil {
			agentErr = err
			return
		}
		agentBin = filepath.Join(dir, "mindrouter-nodeagent")
		agentErr = goBuild("node agent", agentBin, "./nodeagent/cmd/mindrouter-nodeagent")
	})
	return agentBin, agentErr
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
	secretFile := filepath.Join(c.dataDir, name+".secret")
	if err := os.WriteFile(secretFile, []byte(secret), 0o600); err != nil {
		c.t.Fatal(err)
	}
	port := freePort(c.t)
	a := &NodeAgent{MetricsURL: "http://127.0.0.1:" + port}
	a.p = startProcEnv(c.t, bin, []string{
		"-control-plane", c.GRPCAddr, "-node-name", name, "-secret-file", secretFile,
		"-metrics-addr", "127.0.0.1:" + port, "-interval", "1s", "-log-format", "json", "-log-level", "debug",
	}, filepath.Join(c.dataDir, name+"-agent.log"), []string{"MINDROUTER_AGENT_SECRET="})
	waitHTTP(c.t, a.MetricsURL+"/healthz", a.p, false)
	return a
}

// Log returns the agent's log.
func (a *NodeAgent) Log() string { return a.p.log() }
