package collector_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/nodeagent/internal/collector"
	"github.com/mindrouter/mindrouter/nodeagent/internal/nvmltest"
	nodeagentv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/nodeagent/v1"
)

var fixedNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func procNames(pid uint32) (string, error) {
	if pid == 4242 {
		return "vllm", nil
	}
	return "", os.ErrNotExist
}

func TestCollectDGX(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		srv      *server.Server
		gpuName  string
		memoryMB uint64
		cc       string
	}{
		{name: "dgxh100", srv: nvmltest.DGXH100(), gpuName: "NVIDIA H100 80GB HBM3", memoryMB: 81920, cc: "9.0"},
		{name: "dgxa100", srv: nvmltest.DGXA100(), gpuName: "Mock NVIDIA A100-SXM4-40GB", memoryMB: 40960, cc: "8.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := collector.New(tt.srv, collector.WithClock(func() time.Time { return fixedNow }),
				collector.WithProcessNames(procNames))
			s, err := c.Collect(t.Context())
			require.NoError(t, err)
			require.Empty(t, s.GetNvmlError())
			assert.Equal(t, fixedNow, s.GetSampledAt().AsTime())
			assert.Equal(t, "550.54.15", s.GetDriverVersion())
			assert.Equal(t, "12.4", s.GetCudaVersion())
			assert.Equal(t, "12.550.54.15", s.GetNvmlVersion())
			require.Len(t, s.GetGpus(), 8)

			for i, g := range s.GetGpus() {
				dev := tt.srv.Devices[i].(*server.Device)
				want := nvmltest.DefaultReadings(i)
				assert.Equal(t, uint32(i), g.GetIndex())
				assert.Equal(t, tt.gpuName, g.GetName())
				assert.Equal(t, dev.UUID, g.GetUuid())
				assert.Equal(t, dev.PciBusID, g.GetPciBusId())
				assert.Equal(t, tt.cc, g.GetComputeCapability())
				assert.Equal(t, tt.memoryMB<<20, g.GetMemoryTotalBytes())
				assert.Equal(t, want.MemoryUsedBytes, g.GetMemoryUsedBytes())
				assert.Equal(t, tt.memoryMB<<20-want.MemoryUsedBytes, g.GetMemoryFreeBytes())
				assert.Equal(t, want.UtilizationGPU, g.GetUtilizationGpuPercent())
				assert.Equal(t, want.UtilizationMemory, g.GetUtilizationMemoryPercent())
				assert.Equal(t, want.TemperatureC, g.GetTemperatureC())
				assert.Equal(t, want.PowerMilliwatts, g.GetPowerDrawMilliwatts())
				assert.Equal(t, want.PowerLimitMW, g.GetPowerLimitMilliwatts())
				assert.Equal(t, want.ClockSMMHz, g.GetClockSmMhz())
				assert.Equal(t, want.ClockMemoryMHz, g.GetClockMemoryMhz())
				assert.Nil(t, g.FanSpeedPercent, "SXM GPUs report no fan")
				if i != 0 {
					assert.Empty(t, g.GetProcesses())
				}
			}
			procs := s.GetGpus()[0].GetProcesses()
			require.Len(t, procs, 1, "a compute+graphics process is reported once")
			assert.Equal(t, uint32(4242), procs[0].GetPid())
			assert.Equal(t, uint64(1<<30), procs[0].GetUsedMemoryBytes())
			assert.Equal(t, "vllm", procs[0].GetName())
		})
	}
}

func TestCollectFieldErrorsKeepGPU(t *testing.T) {
	t.Parallel()
	fan := uint32(37)
	srv := nvmltest.Instrument(nvmltest.DGXH100(), func(i int) nvmltest.Readings {
		r := nvmltest.DefaultReadings(i)
		if i == 1 {
			r.FanPercent = &fan
		}
		return r
	})
	broken := srv.Devices[2].(*server.Device)
	broken.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) {
		return nvml.Utilization{}, nvml.ERROR_UNKNOWN
	}
	broken.GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
	broken.GetEnforcedPowerLimitFunc = func() (uint32, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
	broken.GetPowerManagementLimitFunc = func() (uint32, nvml.Return) { return 450_000, nvml.SUCCESS }
	broken.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) {
		return nil, nvml.ERROR_NO_PERMISSION
	}
	broken.GetGraphicsRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) {
		return []nvml.ProcessInfo{{Pid: 7, UsedGpuMemory: ^uint64(0)}}, nvml.SUCCESS
	}

	s, err := collector.New(srv, collector.WithProcessNames(procNames)).Collect(t.Context())
	require.NoError(t, err)
	require.Len(t, s.GetGpus(), 8)

	require.NotNil(t, s.GetGpus()[1].FanSpeedPercent)
	assert.Equal(t, fan, s.GetGpus()[1].GetFanSpeedPercent())

	g := s.GetGpus()[2]
	assert.Equal(t, broken.UUID, g.GetUuid(), "identity survives field errors")
	assert.Zero(t, g.GetUtilizationGpuPercent())
	assert.Zero(t, g.GetTemperatureC())
	assert.Equal(t, uint32(450_000), g.GetPowerLimitMilliwatts(), "falls back to the management limit")
	assert.Equal(t, nvmltest.DefaultReadings(2).PowerMilliwatts, g.GetPowerDrawMilliwatts())
	require.Len(t, g.GetProcesses(), 1)
	assert.Zero(t, g.GetProcesses()[0].GetUsedMemoryBytes(), "NVML_VALUE_NOT_AVAILABLE reads as 0")
	assert.Empty(t, g.GetProcesses()[0].GetName(), "unreadable comm leaves the name empty")
}

func TestCollectLostGPU(t *testing.T) {
	t.Parallel()
	srv := nvmltest.DGXH100()
	srv.DeviceGetHandleByIndexFunc = func(i int) (nvml.Device, nvml.Return) {
		if i == 3 {
			return nil, nvml.ERROR_GPU_IS_LOST
		}
		return srv.Devices[i], nvml.SUCCESS
	}
	s, err := collector.New(srv).Collect(t.Context())
	require.NoError(t, err)
	require.Len(t, s.GetGpus(), 7)
	assert.Contains(t, s.GetNvmlError(), "gpu 3 handle: ERROR_GPU_IS_LOST")
	for _, g := range s.GetGpus() {
		assert.NotEqual(t, uint32(3), g.GetIndex())
	}
}

func TestCollectInitFailure(t *testing.T) {
	t.Parallel()
	inits := 0
	lib := &mock.Interface{
		InitFunc: func() nvml.Return {
			inits++
			return nvml.ERROR_LIBRARY_NOT_FOUND
		},
		// Any other call panics: the collector must not touch NVML after a failed Init.
	}
	c := collector.New(lib)
	for range 2 {
		s, err := c.Collect(t.Context())
		require.NoError(t, err)
		assert.Empty(t, s.GetGpus())
		assert.Equal(t, "nvml init: ERROR_LIBRARY_NOT_FOUND", s.GetNvmlError())
		assert.NotNil(t, s.GetSampledAt())
	}
	assert.Equal(t, 2, inits, "Init is retried on every collection")
	require.NoError(t, c.Close(), "Close after a failed Init does not shut down")
}

func TestCollectInitRecovers(t *testing.T) {
	t.Parallel()
	srv := nvmltest.DGXH100()
	fail := true
	srv.InitFunc = func() nvml.Return {
		if fail {
			return nvml.ERROR_DRIVER_NOT_LOADED
		}
		return nvml.SUCCESS
	}
	shutdowns := 0
	srv.ShutdownFunc = func() nvml.Return { shutdowns++; return nvml.SUCCESS }

	c := collector.New(srv)
	s, err := c.Collect(t.Context())
	require.NoError(t, err)
	assert.Contains(t, s.GetNvmlError(), "ERROR_DRIVER_NOT_LOADED")

	fail = false
	s, err = c.Collect(t.Context())
	require.NoError(t, err)
	assert.Empty(t, s.GetNvmlError())
	assert.Len(t, s.GetGpus(), 8)

	require.NoError(t, c.Close())
	require.NoError(t, c.Close())
	assert.Equal(t, 1, shutdowns)
}

func TestCollectRealLibraryMissing(t *testing.T) {
	t.Parallel()
	lib := nvml.New(nvml.WithLibraryPath("/nonexistent/libnvidia-ml.so.1"))
	s, err := collector.New(lib).Collect(t.Context())
	require.NoError(t, err)
	assert.Empty(t, s.GetGpus())
	assert.Contains(t, s.GetNvmlError(), "ERROR_LIBRARY_NOT_FOUND")
}

func TestCollectCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := collector.New(nvmltest.DGXH100()).Collect(ctx)
	require.ErrorIs(t, err, context.Canceled)
}

func TestCollectDefaultProcessNames(t *testing.T) {
	t.Parallel()
	self := uint32(os.Getpid())
	srv := nvmltest.Instrument(nvmltest.DGXH100(), func(i int) nvmltest.Readings {
		r := nvmltest.DefaultReadings(i)
		r.Compute = []nvml.ProcessInfo{{Pid: self, UsedGpuMemory: 1 << 20}}
		r.Graphics = nil
		return r
	})
	want, err := collector.ProcComm(self)
	require.NoError(t, err)
	require.NotEmpty(t, want)

	s, err := collector.New(srv).Collect(t.Context())
	require.NoError(t, err)
	require.Len(t, s.GetGpus()[0].GetProcesses(), 1)
	assert.Equal(t, want, s.GetGpus()[0].GetProcesses()[0].GetName())
}

func TestProcCommMissing(t *testing.T) {
	t.Parallel()
	_, err := collector.ProcComm(1 << 31)
	require.ErrorIs(t, err, os.ErrNotExist, "got %v", err)
}

func TestCUDAVersion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   int
		want string
	}{
		{12040, "12.4"}, {12060, "12.6"}, {11080, "11.8"}, {13000, "13.0"}, {0, ""}, {-1, ""},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, collector.CUDAVersion(tt.in), "CUDAVersion(%d)", tt.in)
	}
}

func TestPCIBusID(t *testing.T) {
	t.Parallel()
	var p nvml.PciInfo
	assert.Empty(t, collector.PCIBusID(p))
	for i, c := range "0000:3B:00.0" {
		p.BusIdLegacy[i] = int8(c)
	}
	assert.Equal(t, "0000:3B:00.0", collector.PCIBusID(p), "legacy field is the fallback")
	for i, c := range "00000000:3B:00.0" {
		p.BusId[i] = int8(c)
	}
	assert.Equal(t, "00000000:3B:00.0", collector.PCIBusID(p))
}

func TestCollectCarriesHostPowerAlsoWithoutNVML(t *testing.T) {
	t.Parallel()
	hp := &nodeagentv1.HostPower{CpuMilliwatts: 95_000, Source: "rapl"}
	lib := &mock.Interface{InitFunc: func() nvml.Return { return nvml.ERROR_LIBRARY_NOT_FOUND }}
	c := collector.New(lib, collector.WithHostPower(func() *nodeagentv1.HostPower { return hp }))
	s, err := c.Collect(t.Context())
	require.NoError(t, err)
	assert.NotEmpty(t, s.GetNvmlError())
	assert.Equal(t, uint64(95_000), s.GetHostPower().GetCpuMilliwatts(), "a CPU-only host still reports its power")

	s, err = collector.New(nvmltest.DGXH100(), collector.WithHostPower(func() *nodeagentv1.HostPower { return hp })).Collect(t.Context())
	require.NoError(t, err)
	assert.Len(t, s.GetGpus(), 8)
	assert.Equal(t, "rapl", s.GetHostPower().GetSource())
}
