package collector

import (
	"cmp"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	nodeagentv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/nodeagent/v1"
)

// CUDAVersion formats NVML's CUDA driver version integer (1000*major + 10*minor, e.g.
// 12040) as "major.minor" ("12.4"); a non-positive value gives "".
func CUDAVersion(v int) string {
	if v <= 0 {
		return ""
	}
	return fmt.Sprintf("%d.%d", v/1000, (v%1000)/10)
}

// PCIBusID returns the NUL-terminated bus id ("00000000:3B:00.0") from NVML's PCI info,
// falling back to the legacy field when the long one is empty.
func PCIBusID(p nvml.PciInfo) string {
	if s := cString(p.BusId[:]); s != "" {
		return s
	}
	return cString(p.BusIdLegacy[:])
}

func cString(b []int8) string {
	var sb strings.Builder
	for _, c := range b {
		if c == 0 {
			break
		}
		sb.WriteByte(byte(c))
	}
	return sb.String()
}

// ProcComm returns the short command name of pid from /proc/<pid>/comm. Only the
// command name is read: a command line or environment can carry secrets.
func ProcComm(pid uint32) (string, error) {
	b, err := os.ReadFile("/proc/" + strconv.FormatUint(uint64(pid), 10) + "/comm")
	if err != nil {
		return "", fmt.Errorf("read comm of pid %d: %w", pid, err)
	}
	return strings.TrimSpace(string(b)), nil
}

func sortedProcesses(byPID map[uint32]*nodeagentv1.GPUProcess) []*nodeagentv1.GPUProcess {
	out := make([]*nodeagentv1.GPUProcess, 0, len(byPID))
	for _, p := range byPID {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *nodeagentv1.GPUProcess) int {
		return cmp.Compare(a.Pid, b.Pid)
	})
	return out
}
