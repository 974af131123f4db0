package quota

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"sync"
)

// MemoryStore is a UsageStore in memory, for tests and for running without a
// database table.
type MemoryStore struct {
	mu   sync.Mutex
	recs map[int64]Record
}

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore { return &MemoryStore{recs: make(map[int64]Record)} }

// LoadUsage returns every record, by user id.
func (s *MemoryStore) LoadUsage(context.Context) ([]Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Collect(maps.Values(s.recs))
	slices.SortFunc(out, func(a, b Record) int { return cmp.Compare(a.UserID, b.UserID) })
	return out, nil
}

// SaveUsage inserts or replaces each user's record.
func (s *MemoryStore) SaveUsage(_ context.Context, records []Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range records {
		s.recs[r.UserID] = r
	}
	return nil
}
