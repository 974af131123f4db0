package store

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/mindrouter/mindrouter/ent"
	"github.com/mindrouter/mindrouter/ent/gpudevice"
)

// GPUDevice is the static inventory of one GPU on one node.
type GPUDevice struct {
	ID                   int64
	NodeID               int64
	NodeName             string
	Index                int
	UUID                 string
	Name                 string
	PCIBusID             string
	ComputeCapability    string
	MemoryTotalBytes     int64
	PowerLimitMilliwatts int64
	CreatedAt            time.Time
	UpdatedAt            time.Time
}

// GPUDeviceSpec is one GPU as a node agent reports it.
type GPUDeviceSpec struct {
	Index                int
	UUID                 string
	Name                 string
	PCIBusID             string
	ComputeCapability    string
	MemoryTotalBytes     int64
	PowerLimitMilliwatts int64
}

// UpsertGPUDevices makes the node's stored GPU inventory equal to devices, in one
// transaction: GPUs are matched by index, reported ones inserted or updated, and
// GPUs the agent no longer reports removed. An unknown node is ErrNotFound.
func (s *Store) UpsertGPUDevices(ctx context.Context, nodeID int64, devices []GPUDeviceSpec) error {
	op := fmt.Sprintf("store GPUs of node %d", nodeID)
	byIndex := make(map[int]GPUDeviceSpec, len(devices))
	for _, d := range devices {
		if d.Index < 0 {
			return invalid(op, "negative GPU index %d", d.Index)
		}
		byIndex[d.Index] = d
	}
	err := s.withTx(ctx, func(tx *ent.Tx) error {
		if _, err := tx.Node.Get(ctx, int(nodeID)); err != nil {
			return err
		}
		indices := make([]int, 0, len(byIndex))
		builders := make([]*ent.GPUDeviceCreate, 0, len(byIndex))
		for _, idx := range slices.Sorted(maps.Keys(byIndex)) {
			d := byIndex[idx]
			indices = append(indices, idx)
			builders = append(builders, tx.GPUDevice.Create().
				SetNodeID(int(nodeID)).
				SetGpuIndex(idx).
				SetUUID(d.UUID).
				SetName(d.Name).
				SetPciBusID(d.PCIBusID).
				SetComputeCapability(d.ComputeCapability).
				SetMemoryTotalBytes(d.MemoryTotalBytes).
				SetPowerLimitMilliwatts(d.PowerLimitMilliwatts))
		}
		del := tx.GPUDevice.Delete().Where(gpudevice.NodeID(int(nodeID)))
		if len(indices) > 0 {
			del.Where(gpudevice.GpuIndexNotIn(indices...))
		}
		if _, err := del.Exec(ctx); err != nil {
			return err
		}
		if len(builders) == 0 {
			return nil
		}
		return tx.GPUDevice.CreateBulk(builders...).
			OnConflictColumns(gpudevice.FieldNodeID, gpudevice.FieldGpuIndex).
			UpdateNewValues().
			Exec(ctx)
	})
	return dbErr(op, err)
}

// ListGPUDevices returns every GPU of every node, ordered by node and index.
func (s *Store) ListGPUDevices(ctx context.Context) ([]GPUDevice, error) {
	rows, err := s.c(ctx).GPUDevice.Query().
		WithNode().
		Order(ent.Asc(gpudevice.FieldNodeID), ent.Asc(gpudevice.FieldGpuIndex)).
		All(ctx)
	if err != nil {
		return nil, dbErr("list GPUs", err)
	}
	out := make([]GPUDevice, len(rows))
	for i, d := range rows {
		out[i] = GPUDevice{
			ID:                   int64(d.ID),
			NodeID:               int64(d.NodeID),
			Index:                d.GpuIndex,
			UUID:                 d.UUID,
			Name:                 d.Name,
			PCIBusID:             d.PciBusID,
			ComputeCapability:    d.ComputeCapability,
			MemoryTotalBytes:     d.MemoryTotalBytes,
			PowerLimitMilliwatts: d.PowerLimitMilliwatts,
			CreatedAt:            utc(d.CreatedAt),
			UpdatedAt:            utc(d.UpdatedAt),
		}
		if n := d.Edges.Node; n != nil {
			out[i].NodeName = n.Name
		}
	}
	return out, nil
}
