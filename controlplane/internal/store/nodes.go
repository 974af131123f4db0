package store

import (
	"context"
	"fmt"
	"time"

	"github.com/mindrouter/mindrouter/ent"
	"github.com/mindrouter/mindrouter/ent/backend"
	"github.com/mindrouter/mindrouter/ent/gpudevice"
	"github.com/mindrouter/mindrouter/ent/node"
)

// Statuses of a node, as its agent's stream reports them.
const (
	NodeOnline  = "online"
	NodeOffline = "offline"
	NodeUnknown = "unknown"
)

// Node is a GPU server hosting backends, optionally running a node agent.
type Node struct {
	ID       int64
	Name     string
	Hostname string
	// AgentSecretSHA256 is the hex SHA-256 digest of the agent's secret, empty when
	// none is set. Never expose it; report only whether it is set.
	AgentSecretSHA256 string
	Status            string
	GPUCount          int
	DriverVersion     string
	CUDAVersion       string
	AgentVersion      string
	LastSeen          *time.Time
	CreatedAt         time.Time
	UpdatedAt         time.Time
}

// NodeSpec is a node's definition as registered by an operator.
type NodeSpec struct {
	Name              string
	Hostname          string
	AgentSecretSHA256 string
}

// NodePatch changes the fields that are not nil.
type NodePatch struct {
	Name              *string
	Hostname          *string
	AgentSecretSHA256 *string
}

// NodeAgentInfo is what a node agent reports about its node. Empty strings, a zero
// LastSeen and a zero GPUCount leave the stored values unchanged, so that marking a
// node offline keeps its last known inventory.
type NodeAgentInfo struct {
	Status        string
	LastSeen      time.Time
	DriverVersion string
	CUDAVersion   string
	AgentVersion  string
	GPUCount      int
}

// RegisterNode creates a node. Registering the same definition again returns the
// stored node with created=false; a different definition under the same name is
// ErrConflict unless upsert is set, in which case the stored definition is replaced
// (an empty agent secret then clears the secret).
func (s *Store) RegisterNode(ctx context.Context, spec NodeSpec, upsert bool) (Node, bool, error) {
	op := fmt.Sprintf("register node %q", spec.Name)
	if spec.Name == "" {
		return Node{}, false, invalid(op, "name is empty")
	}
	// Two attempts: a concurrent registration of the same name can win the insert
	// between our lookup and our create; the second pass then sees its row.
	for attempt := 0; ; attempt++ {
		existing, err := s.c(ctx).Node.Query().Where(node.Name(spec.Name)).Only(ctx)
		switch {
		case ent.IsNotFound(err):
			n, err := s.c(ctx).Node.Create().
				SetName(spec.Name).
				SetHostname(spec.Hostname).
				SetAgentSecretSha256(spec.AgentSecretSHA256).
				Save(ctx)
			if ent.IsConstraintError(err) && attempt == 0 {
				continue
			}
			if err != nil {
				return Node{}, false, dbErr(op, err)
			}
			return toNode(n), true, nil
		case err != nil:
			return Node{}, false, dbErr(op, err)
		}
		if existing.Hostname == spec.Hostname && existing.AgentSecretSha256 == spec.AgentSecretSHA256 {
			return toNode(existing), false, nil
		}
		if !upsert {
			return Node{}, false, fmt.Errorf("%s: a different node of that name exists (set upsert to replace it): %w", op, ErrConflict)
		}
		n, err := existing.Update().
			SetHostname(spec.Hostname).
			SetAgentSecretSha256(spec.AgentSecretSHA256).
			Save(ctx)
		if err != nil {
			return Node{}, false, dbErr(op, err)
		}
		return toNode(n), false, nil
	}
}

// ListNodes returns every node, ordered by id.
func (s *Store) ListNodes(ctx context.Context) ([]Node, error) {
	rows, err := s.c(ctx).Node.Query().Order(ent.Asc(node.FieldID)).All(ctx)
	if err != nil {
		return nil, dbErr("list nodes", err)
	}
	out := make([]Node, len(rows))
	for i, n := range rows {
		out[i] = toNode(n)
	}
	return out, nil
}

// GetNode returns the node with the given id.
func (s *Store) GetNode(ctx context.Context, id int64) (Node, error) {
	n, err := s.c(ctx).Node.Get(ctx, int(id))
	if err != nil {
		return Node{}, dbErr(fmt.Sprintf("get node %d", id), err)
	}
	return toNode(n), nil
}

// GetNodeByName returns the node with the given name.
func (s *Store) GetNodeByName(ctx context.Context, name string) (Node, error) {
	n, err := s.c(ctx).Node.Query().Where(node.Name(name)).Only(ctx)
	if err != nil {
		return Node{}, dbErr(fmt.Sprintf("get node %q", name), err)
	}
	return toNode(n), nil
}

// UpdateNode changes the fields of p that are set. Renaming onto another node's
// name is ErrConflict.
func (s *Store) UpdateNode(ctx context.Context, id int64, p NodePatch) (Node, error) {
	op := fmt.Sprintf("update node %d", id)
	if p.Name != nil && *p.Name == "" {
		return Node{}, invalid(op, "name is empty")
	}
	n, err := s.c(ctx).Node.UpdateOneID(int(id)).
		SetNillableName(p.Name).
		SetNillableHostname(p.Hostname).
		SetNillableAgentSecretSha256(p.AgentSecretSHA256).
		Save(ctx)
	if err != nil {
		return Node{}, dbErr(op, err)
	}
	return toNode(n), nil
}

// DeleteNode removes a node and its GPU inventory. It is ErrInUse while backends
// reference the node.
func (s *Store) DeleteNode(ctx context.Context, id int64) error {
	op := fmt.Sprintf("delete node %d", id)
	err := s.withTx(ctx, func(tx *ent.Tx) error {
		inUse, err := tx.Backend.Query().Where(backend.NodeID(int(id))).Count(ctx)
		if err != nil {
			return err
		}
		if inUse > 0 {
			return fmt.Errorf("%d backends reference it: %w", inUse, ErrInUse)
		}
		if _, err := tx.GPUDevice.Delete().Where(gpudevice.NodeID(int(id))).Exec(ctx); err != nil {
			return err
		}
		return tx.Node.DeleteOneID(int(id)).Exec(ctx)
	})
	return dbErr(op, err)
}

// RecordNodeAgent stores what a node agent reported; see NodeAgentInfo.
func (s *Store) RecordNodeAgent(ctx context.Context, id int64, info NodeAgentInfo) error {
	op := fmt.Sprintf("record agent of node %d", id)
	u := s.c(ctx).Node.UpdateOneID(int(id))
	if info.Status != "" {
		st := node.Status(info.Status)
		if err := node.StatusValidator(st); err != nil {
			return invalid(op, "unknown status %q (want online, offline or unknown)", info.Status)
		}
		u.SetStatus(st)
	}
	if !info.LastSeen.IsZero() {
		u.SetLastSeen(info.LastSeen.UTC())
	}
	if info.DriverVersion != "" {
		u.SetDriverVersion(info.DriverVersion)
	}
	if info.CUDAVersion != "" {
		u.SetCudaVersion(info.CUDAVersion)
	}
	if info.AgentVersion != "" {
		u.SetAgentVersion(info.AgentVersion)
	}
	if info.GPUCount > 0 {
		u.SetGpuCount(info.GPUCount)
	}
	return dbErr(op, u.Exec(ctx))
}

func toNode(n *ent.Node) Node {
	return Node{
		ID:                int64(n.ID),
		Name:              n.Name,
		Hostname:          n.Hostname,
		AgentSecretSHA256: n.AgentSecretSha256,
		Status:            string(n.Status),
		GPUCount:          n.GpuCount,
		DriverVersion:     n.DriverVersion,
		CUDAVersion:       n.CudaVersion,
		AgentVersion:      n.AgentVersion,
		LastSeen:          utcPtr(n.LastSeen),
		CreatedAt:         utc(n.CreatedAt),
		UpdatedAt:         utc(n.UpdatedAt),
	}
}
