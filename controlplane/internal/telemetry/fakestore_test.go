package telemetry_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

// fakeStore is an in-memory NodeStore with the store's semantics for RecordNodeAgent
// (zero values leave fields unchanged) and UpsertGPUDevices (replace the inventory).
type fakeStore struct {
	mu        sync.Mutex
	nodes     map[string]store.Node
	records   []recordCall
	upserts   map[int64]int
	inventory map[int64][]store.GPUDeviceSpec
	lookupErr error
	recordErr error
}

type recordCall struct {
	NodeID int64
	Info   store.NodeAgentInfo
}

func newFakeStore() *fakeStore {
	return &fakeStore{nodes: map[string]store.Node{}, upserts: map[int64]int{}, inventory: map[int64][]store.GPUDeviceSpec{}}
}

func digest(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// addNode registers a node whose agent secret is secret ("" for none).
func (f *fakeStore) addNode(id int64, name, secret string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := store.Node{ID: id, Name: name, Status: store.NodeUnknown}
	if secret != "" {
		n.AgentSecretSHA256 = digest(secret)
	}
	f.nodes[name] = n
}

func (f *fakeStore) GetNodeByName(_ context.Context, name string) (store.Node, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lookupErr != nil {
		return store.Node{}, f.lookupErr
	}
	n, ok := f.nodes[name]
	if !ok {
		return store.Node{}, fmt.Errorf("get node %q: %w", name, store.ErrNotFound)
	}
	return n, nil
}

func (f *fakeStore) RecordNodeAgent(_ context.Context, id int64, info store.NodeAgentInfo) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.recordErr != nil {
		return f.recordErr
	}
	f.records = append(f.records, recordCall{NodeID: id, Info: info})
	for name, n := range f.nodes {
		if n.ID != id {
			continue
		}
		if info.Status != "" {
			n.Status = info.Status
		}
		if info.DriverVersion != "" {
			n.DriverVersion = info.DriverVersion
		}
		if info.CUDAVersion != "" {
			n.CUDAVersion = info.CUDAVersion
		}
		if info.AgentVersion != "" {
			n.AgentVersion = info.AgentVersion
		}
		if info.GPUCount > 0 {
			n.GPUCount = info.GPUCount
		}
		if !info.LastSeen.IsZero() {
			t := info.LastSeen
			n.LastSeen = &t
		}
		f.nodes[name] = n
		return nil
	}
	return fmt.Errorf("record agent of node %d: %w", id, store.ErrNotFound)
}

func (f *fakeStore) UpsertGPUDevices(_ context.Context, nodeID int64, devices []store.GPUDeviceSpec) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.upserts[nodeID]++
	f.inventory[nodeID] = slices.Clone(devices)
	return nil
}

func (f *fakeStore) node(name string) store.Node {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.nodes[name]
}

func (f *fakeStore) upsertCount(id int64) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.upserts[id]
}

func (f *fakeStore) storedInventory(id int64) []store.GPUDeviceSpec {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.inventory[id])
}

func (f *fakeStore) recordCalls() []recordCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.records)
}
