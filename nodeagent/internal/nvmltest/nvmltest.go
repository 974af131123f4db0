// Package nvmltest completes go-nvml's fake DGX servers for tests: the fakes answer
// identity and memory queries but leave utilisation, temperature, power, clocks, fan and
// process queries unset (calling one panics), so Instrument fills them with known
// readings. It is imported by tests and by the agent built with the nvmlsim tag
// (end-to-end tests) only.
package nvmltest

import (
	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
)

// Readings are the values one fake GPU reports.
type Readings struct {
	UtilizationGPU    uint32
	UtilizationMemory uint32
	MemoryUsedBytes   uint64
	TemperatureC      uint32
	PowerMilliwatts   uint32
	PowerLimitMW      uint32
	ClockSMMHz        uint32
	ClockMemoryMHz    uint32
	// FanPercent nil makes GetFanSpeed return ERROR_NOT_SUPPORTED (passive cooling).
	FanPercent *uint32
	Compute    []nvml.ProcessInfo
	Graphics   []nvml.ProcessInfo
}

// DefaultReadings gives GPU i distinct, predictable values: passively cooled (no fan),
// and GPU 0 runs one compute process (PID 4242, 1 GiB) that is also a graphics process.
func DefaultReadings(i int) Readings {
	r := Readings{
		UtilizationGPU:    uint32(10 + i),
		UtilizationMemory: uint32(20 + i),
		MemoryUsedBytes:   uint64(i+1) << 30,
		TemperatureC:      uint32(40 + i),
		PowerMilliwatts:   uint32(300_000 + 1_000*i),
		PowerLimitMW:      700_000,
		ClockSMMHz:        1980,
		ClockMemoryMHz:    2619,
	}
	if i == 0 {
		r.Compute = []nvml.ProcessInfo{{Pid: 4242, UsedGpuMemory: 1 << 30}}
		r.Graphics = []nvml.ProcessInfo{{Pid: 4242, UsedGpuMemory: 1 << 20}}
	}
	return r
}

// DGXH100 is go-nvml's fake DGX H100 (8 × H100 80GB) with DefaultReadings.
func DGXH100() *server.Server { return Instrument(dgxh100.New(), DefaultReadings) }

// DGXA100 is go-nvml's fake DGX A100 (8 × A100 40GB) with DefaultReadings.
func DGXA100() *server.Server { return Instrument(dgxa100.New(), DefaultReadings) }

// Instrument sets every query the collector makes that srv's devices leave unset, with
// the values readings gives for each index, and returns srv. Call it before use: the
// fake's fields are not guarded against concurrent writes.
func Instrument(srv *server.Server, readings func(i int) Readings) *server.Server {
	for i, d := range srv.Devices {
		dev, ok := d.(*server.Device)
		if !ok {
			continue
		}
		instrumentDevice(dev, readings(i))
	}
	return srv
}

func instrumentDevice(d *server.Device, r Readings) {
	total := d.MemoryInfo.Total
	d.MemoryInfo = nvml.Memory{Total: total, Used: r.MemoryUsedBytes, Free: total - r.MemoryUsedBytes}
	busID := d.PciBusID
	deviceID := d.Config.PciDeviceId
	d.GetPciInfoFunc = func() (nvml.PciInfo, nvml.Return) {
		p := nvml.PciInfo{PciDeviceId: deviceID}
		for i := 0; i < len(busID) && i < len(p.BusId)-1; i++ {
			p.BusId[i] = int8(busID[i])
		}
		return p, nvml.SUCCESS
	}
	d.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) {
		return nvml.Utilization{Gpu: r.UtilizationGPU, Memory: r.UtilizationMemory}, nvml.SUCCESS
	}
	d.GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) {
		return r.TemperatureC, nvml.SUCCESS
	}
	d.GetPowerUsageFunc = func() (uint32, nvml.Return) { return r.PowerMilliwatts, nvml.SUCCESS }
	d.GetEnforcedPowerLimitFunc = func() (uint32, nvml.Return) { return r.PowerLimitMW, nvml.SUCCESS }
	d.GetPowerManagementLimitFunc = func() (uint32, nvml.Return) { return r.PowerLimitMW, nvml.SUCCESS }
	d.GetClockInfoFunc = func(t nvml.ClockType) (uint32, nvml.Return) {
		switch t {
		case nvml.CLOCK_SM:
			return r.ClockSMMHz, nvml.SUCCESS
		case nvml.CLOCK_MEM:
			return r.ClockMemoryMHz, nvml.SUCCESS
		default:
			return 0, nvml.ERROR_NOT_SUPPORTED
		}
	}
	d.GetFanSpeedFunc = func() (uint32, nvml.Return) {
		if r.FanPercent == nil {
			return 0, nvml.ERROR_NOT_SUPPORTED
		}
		return *r.FanPercent, nvml.SUCCESS
	}
	d.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) {
		return append([]nvml.ProcessInfo(nil), r.Compute...), nvml.SUCCESS
	}
	d.GetGraphicsRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) {
		return append([]nvml.ProcessInfo(nil), r.Graphics...), nvml.SUCCESS
	}
}
