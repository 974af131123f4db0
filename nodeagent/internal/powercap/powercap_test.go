package powercap_test

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/nodeagent/internal/powercap"
)

// fakeTree is a /sys/class/powercap lookalike: two packages with core and dram
// subzones, the control type directory and an MMIO duplicate of package 0.
type fakeTree struct {
	t    *testing.T
	root string
}

func newFakeTree(t *testing.T) *fakeTree {
	f := &fakeTree{t: t, root: t.TempDir()}
	f.zone("intel-rapl", "", 0, 0)
	f.zone("intel-rapl:0", "package-0", 1_000_000, 262143328850)
	f.zone("intel-rapl:0:0", "core", 500_000, 262143328850)
	f.zone("intel-rapl:0:1", "dram", 2_000_000, 65712999613)
	f.zone("intel-rapl:1", "package-1", 5_000_000, 262143328850)
	f.zone("intel-rapl-mmio:0", "package-0", 7, 262143328850)
	return f
}

func (f *fakeTree) zone(dir, name string, uj, maxRange uint64) {
	p := filepath.Join(f.root, dir)
	require.NoError(f.t, os.MkdirAll(p, 0o755))
	if name == "" {
		return
	}
	require.NoError(f.t, os.WriteFile(filepath.Join(p, "name"), []byte(name+"\n"), 0o644))
	f.set(dir, uj)
	require.NoError(f.t, os.WriteFile(filepath.Join(p, "max_energy_range_uj"), []byte(strconv.FormatUint(maxRange, 10)+"\n"), 0o644))
}

func (f *fakeTree) set(dir string, uj uint64) {
	require.NoError(f.t, os.WriteFile(filepath.Join(f.root, dir, "energy_uj"), []byte(strconv.FormatUint(uj, 10)+"\n"), 0o644))
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestReadPowerFromCounters(t *testing.T) {
	t.Parallel()
	tree := newFakeTree(t)
	c := &clock{t: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)}
	r := powercap.New(tree.root, c.now)

	first, err := r.Read()
	require.NoError(t, err)
	assert.Nil(t, first, "one reading is no power yet")

	// Two seconds later: package 0 used 240 J (120 W), its DRAM 30 J (15 W),
	// package 1 wrapped: 262143328850 − 262143000000 + 131_671_150 µJ = 132 J (66 W).
	c.t = c.t.Add(2 * time.Second)
	tree.set("intel-rapl:0", 241_000_000)
	tree.set("intel-rapl:0:0", 100_500_000)
	tree.set("intel-rapl:0:1", 32_000_000)
	tree.set("intel-rapl:1", 131_671_150)
	// Make package 1's previous reading sit just under its range.
	r2 := powercap.New(tree.root, c.now)
	tree.set("intel-rapl:1", 262_143_000_000)
	_, err = r2.Read()
	require.NoError(t, err)
	tree.set("intel-rapl:1", 131_671_150)
	c.t = c.t.Add(2 * time.Second)
	wrapped, err := r2.Read()
	require.NoError(t, err)
	require.NotNil(t, wrapped)

	got, err := r.Read()
	require.NoError(t, err)
	require.NotNil(t, got)
	assert.Equal(t, "rapl", got.GetSource())
	names := map[string]uint64{}
	for _, d := range got.GetDomains() {
		names[d.GetName()] = d.GetMilliwatts()
	}
	// r's interval is 4 s: package 0 240 J → 60 W, DRAM 30 J → 7.5 W; package 1 is
	// compared with its first reading (5 J → 131.67 J, no wrap) → 31.67 W.
	assert.Equal(t, map[string]uint64{"package-0": 60_000, "package-0/dram": 7_500, "package-1": 31_667}, names)
	assert.Equal(t, uint64(60_000+7_500+31_667), got.GetCpuMilliwatts())

	for _, d := range wrapped.GetDomains() {
		if d.GetName() == "package-1" {
			// (262143328850 − 262143000000 + 131671150) µJ over 2 s.
			assert.Equal(t, uint64((328850+131671150)/2/1000), d.GetMilliwatts())
		}
	}
}

func TestDelta(t *testing.T) {
	t.Parallel()
	assert.InDelta(t, 5, powercap.Delta(10, 15, 100), 0)
	assert.InDelta(t, 15, powercap.Delta(90, 5, 100), 0, "wrapped past the range")
	assert.InDelta(t, 5, powercap.Delta(90, 5, 50), 0, "a range below the reading counts from 0")
}

func TestReadWithoutPowercap(t *testing.T) {
	t.Parallel()
	_, err := powercap.New(filepath.Join(t.TempDir(), "absent"), nil).Read()
	require.Error(t, err)
	_, err = powercap.New(t.TempDir(), nil).Read()
	require.ErrorContains(t, err, "no RAPL zones")

	tree := newFakeTree(t)
	for _, z := range []string{"intel-rapl:0", "intel-rapl:0:1", "intel-rapl:1"} {
		require.NoError(t, os.WriteFile(filepath.Join(tree.root, z, "energy_uj"), []byte("not a number"), 0o644))
	}
	hp, err := powercap.New(tree.root, nil).Read()
	assert.Nil(t, hp)
	require.ErrorContains(t, err, "energy_uj")
}

func FuzzCounterText(f *testing.F) {
	f.Add([]byte("123456\n"))
	f.Add([]byte(""))
	f.Add([]byte("18446744073709551616"))
	f.Add([]byte("-1"))
	f.Fuzz(func(t *testing.T, text []byte) {
		tree := newFakeTree(t)
		require.NoError(t, os.WriteFile(filepath.Join(tree.root, "intel-rapl:0", "energy_uj"), text, 0o644))
		r := powercap.New(tree.root, nil)
		_, _ = r.Read()
		_, _ = r.Read()
	})
}
