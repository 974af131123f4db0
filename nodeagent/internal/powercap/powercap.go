package powercap

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	nodeagentv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/nodeagent/v1"
)

// DefaultRoot is where Linux exposes powercap zones.
const DefaultRoot = "/sys/class/powercap"

// maxCounterText bounds what is read of one sysfs file.
const maxCounterText = 64

// Reader turns successive RAPL counter readings into power. It is safe for
// concurrent use.
type Reader struct {
	root string
	now  func() time.Time

	mu   sync.Mutex
	prev map[string]counter // by zone directory
}

type counter struct {
	uj  uint64
	max uint64
	at  time.Time
}

// New returns a Reader of the zones under root (DefaultRoot on a real host).
func New(root string, now func() time.Time) *Reader {
	if now == nil {
		now = time.Now
	}
	return &Reader{root: root, now: now, prev: map[string]counter{}}
}

// zone is one counted RAPL zone.
type zone struct {
	dir  string
	name string // "package-0" or "package-0/dram"
}

// zones lists the zones to count: packages and their DRAM subzones, sorted.
func (r *Reader) zones() ([]zone, error) {
	entries, err := os.ReadDir(r.root)
	if err != nil {
		return nil, fmt.Errorf("powercap: %w", err)
	}
	var out []zone
	for _, e := range entries {
		id, ok := strings.CutPrefix(e.Name(), "intel-rapl:")
		if !ok {
			continue
		}
		dir := filepath.Join(r.root, e.Name())
		name, err := readText(filepath.Join(dir, "name"))
		if err != nil {
			continue
		}
		switch strings.Count(id, ":") {
		case 0:
			out = append(out, zone{dir: dir, name: name})
		case 1:
			if name != "dram" {
				continue
			}
			parent, err := readText(filepath.Join(r.root, "intel-rapl:"+strings.SplitN(id, ":", 2)[0], "name"))
			if err != nil {
				continue
			}
			out = append(out, zone{dir: dir, name: parent + "/dram"})
		}
	}
	slices.SortFunc(out, func(a, b zone) int { return strings.Compare(a.name, b.name) })
	return out, nil
}

// Read returns the average power of every zone since the previous Read, or nil
// when there is nothing to report yet (the first Read only sets the counters) or
// no zone can be read. The error says why no zone could be read: no powercap tree,
// or counters readable only by root (Linux ≥ 5.10 restricts energy_uj).
func (r *Reader) Read() (*nodeagentv1.HostPower, error) {
	zones, err := r.zones()
	if err != nil {
		return nil, err
	}
	if len(zones) == 0 {
		return nil, errors.New("powercap: no RAPL zones under " + r.root)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	hp := &nodeagentv1.HostPower{Source: "rapl"}
	var firstErr error
	for _, z := range zones {
		c, err := readCounter(z.dir, now)
		if err != nil {
			firstErr = cmpErr(firstErr, err)
			delete(r.prev, z.dir)
			continue
		}
		prev, ok := r.prev[z.dir]
		r.prev[z.dir] = c
		if !ok || !c.at.After(prev.at) {
			continue
		}
		mw := uint64(Delta(prev.uj, c.uj, c.max) / c.at.Sub(prev.at).Seconds() / 1000)
		hp.Domains = append(hp.Domains, &nodeagentv1.PowerDomain{Name: z.name, Milliwatts: mw})
		hp.CpuMilliwatts += mw
	}
	if len(hp.Domains) == 0 {
		return nil, firstErr
	}
	return hp, nil
}

// Delta is the energy in µJ between two readings of a counter that wraps past
// maxRange back to 0.
func Delta(prev, cur, maxRange uint64) float64 {
	if cur >= prev {
		return float64(cur - prev)
	}
	if maxRange < prev {
		// A range smaller than a reading is nonsense; count from 0.
		return float64(cur)
	}
	return float64(maxRange-prev) + float64(cur)
}

func readCounter(dir string, at time.Time) (counter, error) {
	uj, err := readUint(filepath.Join(dir, "energy_uj"))
	if err != nil {
		return counter{}, err
	}
	maxRange, err := readUint(filepath.Join(dir, "max_energy_range_uj"))
	if err != nil {
		return counter{}, err
	}
	return counter{uj: uj, max: maxRange, at: at}, nil
}

func readUint(path string) (uint64, error) {
	s, err := readText(path)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("powercap: %s: %w", path, err)
	}
	return v, nil
}

// readText reads a short sysfs file, trimmed.
func readText(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("powercap: %w", err)
	}
	defer f.Close()
	buf := make([]byte, maxCounterText)
	n, err := f.Read(buf)
	if err != nil && n == 0 {
		return "", fmt.Errorf("powercap: read %s: %w", path, err)
	}
	return strings.TrimSpace(string(buf[:n])), nil
}

func cmpErr(have, err error) error {
	if have != nil {
		return have
	}
	return err
}
