package admission

import "sync"

// maxDirectory bounds each map of a directory; beyond it, new names are not kept.
const maxDirectory = 100_000

// BackendInfo is a backend as the queue view shows it.
type BackendInfo struct {
	ID            int64
	Name          string
	MaxConcurrent int
}

// directory remembers the names last seen for users and backends, so that the
// admin views can show names next to ids. Reads on the hot path take a read lock
// and allocate nothing; a write happens only when a name changes.
type directory struct {
	mu       sync.RWMutex
	users    map[int64]string
	backends map[int64]BackendInfo
}

func newDirectory() *directory {
	return &directory{users: make(map[int64]string), backends: make(map[int64]BackendInfo)}
}

func (d *directory) seeUser(id int64, name string) {
	d.mu.RLock()
	old, ok := d.users[id]
	d.mu.RUnlock()
	if ok && old == name {
		return
	}
	d.mu.Lock()
	if _, ok := d.users[id]; ok || len(d.users) < maxDirectory {
		d.users[id] = name
	}
	d.mu.Unlock()
}

func (d *directory) seeBackend(c Candidate) {
	b := BackendInfo{ID: c.BackendID, Name: c.BackendName, MaxConcurrent: c.MaxConcurrent}
	d.mu.RLock()
	old, ok := d.backends[b.ID]
	d.mu.RUnlock()
	if ok && old == b {
		return
	}
	d.mu.Lock()
	if _, ok := d.backends[b.ID]; ok || len(d.backends) < maxDirectory {
		d.backends[b.ID] = b
	}
	d.mu.Unlock()
}

func (d *directory) user(id int64) string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.users[id]
}

// backendList returns the backends seen.
func (d *directory) backendList() []BackendInfo {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make([]BackendInfo, 0, len(d.backends))
	for _, b := range d.backends {
		out = append(out, b)
	}
	return out
}

func (d *directory) backend(id int64) (BackendInfo, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	b, ok := d.backends[id]
	return b, ok
}
