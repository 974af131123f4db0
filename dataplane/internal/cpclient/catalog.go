package cpclient

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
)

// maxCatalogEntries bounds the cache; when it is full it is emptied, which
// costs one ListModels per credential and never grows memory.
const maxCatalogEntries = 4096

// catalogCache holds ListModels answers per credential. Keys are digests, so
// the cache holds no secret. A generation counter keeps an answer that raced
// an invalidation from being stored.
type catalogCache struct {
	mu      sync.Mutex
	gen     uint64
	entries map[[32]byte]catalogEntry
}

type catalogEntry struct {
	models  []relay.ModelInfo
	expires time.Time
}

func credentialKey(credential string) [32]byte { return sha256.Sum256([]byte(credential)) }

func (c *catalogCache) get(key [32]byte, now time.Time) ([]relay.ModelInfo, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || !now.Before(e.expires) {
		return nil, false
	}
	return e.models, true
}

func (c *catalogCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

func (c *catalogCache) put(key [32]byte, gen uint64, models []relay.ModelInfo, expires time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if len(c.entries) >= maxCatalogEntries {
		clear(c.entries)
	}
	c.entries[key] = catalogEntry{models: models, expires: expires}
}

// invalidate drops every cached catalog.
func (c *catalogCache) invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.entries)
}
