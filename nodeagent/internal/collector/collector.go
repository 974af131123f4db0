package collector

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"google.golang.org/protobuf/types/known/timestamppb"

	nodeagentv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/nodeagent/v1"
)

// MaxGPUs bounds the GPUs read per sample; NVML never reports more on real hardware, and
// the bound keeps a misbehaving library from producing an unbounded message.
const MaxGPUs = 64

// Collector reads NodeSamples from an NVML implementation. It is safe for concurrent use;
// collections are serialised.
type Collector struct {
	lib      nvml.Interface
	logger   *slog.Logger
	now      func() time.Time
	procName func(pid uint32) (string, error)
	host     func() *nodeagentv1.HostPower

	mu          sync.Mutex
	initialised bool
	initErr     nvml.Return // the last Init failure, logged once per change
}

// Option configures a Collector.
type Option func(*Collector)

// WithLogger sets the logger for per-field read errors (debug level) and NVML session
// changes.
func WithLogger(l *slog.Logger) Option {
	return func(c *Collector) {
		if l != nil {
			c.logger = l
		}
	}
}

// WithClock sets the clock that stamps samples.
func WithClock(now func() time.Time) Option {
	return func(c *Collector) {
		if now != nil {
			c.now = now
		}
	}
}

// WithProcessNames sets how a PID's process name is found; the default reads
// /proc/<pid>/comm.
func WithProcessNames(f func(pid uint32) (string, error)) Option {
	return func(c *Collector) {
		if f != nil {
			c.procName = f
		}
	}
}

// WithHostPower sets where the host's non-GPU power comes from (a powercap.Reader's
// Read); it is read with every sample, also when NVML is unavailable.
func WithHostPower(f func() *nodeagentv1.HostPower) Option {
	return func(c *Collector) { c.host = f }
}

// New returns a Collector over lib (nvml.New() in production, a go-nvml mock in tests).
// NVML is initialised lazily by the first Collect.
func New(lib nvml.Interface, opts ...Option) *Collector {
	c := &Collector{
		lib:      lib,
		logger:   slog.New(slog.DiscardHandler),
		now:      time.Now,
		procName: ProcComm,
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Collect reads one sample of every GPU. NVML being unavailable is reported inside the
// sample (nvml_error, no GPUs), not as an error; the only error is ctx's.
func (c *Collector) Collect(ctx context.Context) (*nodeagentv1.NodeSample, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("collect: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()

	sample := &nodeagentv1.NodeSample{SampledAt: timestamppb.New(c.now())}
	if c.host != nil {
		sample.HostPower = c.host()
	}
	if !c.initialised {
		if ret := c.lib.Init(); ret != nvml.SUCCESS {
			sample.NvmlError = "nvml init: " + ret.Error()
			if ret != c.initErr {
				c.initErr = ret
				c.logger.Warn("nvml unavailable; reporting no GPUs until it initialises",
					"nvml_return", ret.Error())
			}
			return sample, nil
		}
		c.initialised, c.initErr = true, nvml.SUCCESS
		c.logger.Info("nvml initialised")
	}

	c.readSystem(sample)
	count, ret := c.lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		sample.NvmlError = "nvml device count: " + ret.Error()
		if ret == nvml.ERROR_UNINITIALIZED {
			c.initialised = false
		}
		return sample, nil
	}
	count = min(count, MaxGPUs)
	for i := range count {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("collect gpu %d: %w", i, err)
		}
		dev, ret := c.lib.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			// Without a handle there is nothing to read; the GPU is reported as an
			// error on the node rather than as an empty GPU.
			c.logger.Warn("nvml device handle", "gpu", i, "nvml_return", ret.Error())
			sample.NvmlError = joinErr(sample.NvmlError, fmt.Sprintf("gpu %d handle: %s", i, ret.Error()))
			continue
		}
		sample.Gpus = append(sample.Gpus, c.readGPU(uint32(i), dev))
	}
	return sample, nil
}

// Close ends the NVML session if one was started.
func (c *Collector) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.initialised {
		return nil
	}
	c.initialised = false
	if ret := c.lib.Shutdown(); ret != nvml.SUCCESS {
		return fmt.Errorf("nvml shutdown: %w", ret)
	}
	return nil
}

func (c *Collector) readSystem(s *nodeagentv1.NodeSample) {
	if v, ret := c.lib.SystemGetDriverVersion(); c.ok("driver_version", -1, ret) {
		s.DriverVersion = v
	}
	if v, ret := c.lib.SystemGetCudaDriverVersion(); c.ok("cuda_version", -1, ret) {
		s.CudaVersion = CUDAVersion(v)
	}
	if v, ret := c.lib.SystemGetNVMLVersion(); c.ok("nvml_version", -1, ret) {
		s.NvmlVersion = v
	}
}

func (c *Collector) readGPU(index uint32, dev nvml.Device) *nodeagentv1.GPUSample {
	g := &nodeagentv1.GPUSample{Index: index}
	gi := int(index)
	if v, ret := dev.GetUUID(); c.ok("uuid", gi, ret) {
		g.Uuid = v
	}
	if v, ret := dev.GetName(); c.ok("name", gi, ret) {
		g.Name = v
	}
	if v, ret := dev.GetPciInfo(); c.ok("pci_bus_id", gi, ret) {
		g.PciBusId = PCIBusID(v)
	}
	if major, minor, ret := dev.GetCudaComputeCapability(); c.ok("compute_capability", gi, ret) {
		g.ComputeCapability = fmt.Sprintf("%d.%d", major, minor)
	}
	if v, ret := dev.GetUtilizationRates(); c.ok("utilization", gi, ret) {
		g.UtilizationGpuPercent = v.Gpu
		g.UtilizationMemoryPercent = v.Memory
	}
	if v, ret := dev.GetMemoryInfo(); c.ok("memory", gi, ret) {
		g.MemoryTotalBytes, g.MemoryUsedBytes, g.MemoryFreeBytes = v.Total, v.Used, v.Free
	}
	if v, ret := dev.GetTemperature(nvml.TEMPERATURE_GPU); c.ok("temperature", gi, ret) {
		g.TemperatureC = v
	}
	if v, ret := dev.GetPowerUsage(); c.ok("power_draw", gi, ret) {
		g.PowerDrawMilliwatts = v
	}
	g.PowerLimitMilliwatts = c.powerLimit(gi, dev)
	if v, ret := dev.GetClockInfo(nvml.CLOCK_SM); c.ok("clock_sm", gi, ret) {
		g.ClockSmMhz = v
	}
	if v, ret := dev.GetClockInfo(nvml.CLOCK_MEM); c.ok("clock_memory", gi, ret) {
		g.ClockMemoryMhz = v
	}
	if v, ret := dev.GetFanSpeed(); c.ok("fan_speed", gi, ret) {
		g.FanSpeedPercent = &v
	}
	g.Processes = c.processes(gi, dev)
	return g
}

// powerLimit prefers the enforced limit (what the GPU is held to) and falls back to the
// management limit on drivers that do not report it.
func (c *Collector) powerLimit(gi int, dev nvml.Device) uint32 {
	if v, ret := dev.GetEnforcedPowerLimit(); c.ok("power_limit", gi, ret) {
		return v
	}
	if v, ret := dev.GetPowerManagementLimit(); c.ok("power_management_limit", gi, ret) {
		return v
	}
	return 0
}

// processes merges compute and graphics processes (a process can be both), one entry
// per PID in PID order.
func (c *Collector) processes(gi int, dev nvml.Device) []*nodeagentv1.GPUProcess {
	var infos []nvml.ProcessInfo
	if v, ret := dev.GetComputeRunningProcesses(); c.ok("compute_processes", gi, ret) {
		infos = append(infos, v...)
	}
	if v, ret := dev.GetGraphicsRunningProcesses(); c.ok("graphics_processes", gi, ret) {
		infos = append(infos, v...)
	}
	if len(infos) == 0 {
		return nil
	}
	byPID := make(map[uint32]*nodeagentv1.GPUProcess, len(infos))
	for _, p := range infos {
		mem := p.UsedGpuMemory
		if mem == math.MaxUint64 { // NVML_VALUE_NOT_AVAILABLE
			mem = 0
		}
		if existing, ok := byPID[p.Pid]; ok {
			existing.UsedMemoryBytes = max(existing.UsedMemoryBytes, mem)
			continue
		}
		gp := &nodeagentv1.GPUProcess{Pid: p.Pid, UsedMemoryBytes: mem}
		if name, err := c.procName(p.Pid); err == nil {
			gp.Name = name
		}
		byPID[p.Pid] = gp
	}
	return sortedProcesses(byPID)
}

// ok reports whether ret is SUCCESS and logs anything else but NOT_SUPPORTED at debug
// level (gpu < 0 means a system-wide field).
func (c *Collector) ok(field string, gpu int, ret nvml.Return) bool {
	if ret == nvml.SUCCESS {
		return true
	}
	if ret != nvml.ERROR_NOT_SUPPORTED {
		c.logger.Debug("nvml field unavailable", "field", field, "gpu", gpu, "nvml_return", ret.Error())
	}
	return false
}

func joinErr(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
