package identity

import (
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"
)

type digest = [sha256.Size]byte

// verified is what a successful Argon2id verification leaves in the cache: the
// principal and the state Verify re-checks on every call.
type verified struct {
	principal  Principal
	status     string
	expiresAt  time.Time // zero: never
	userActive bool
	expires    time.Time // when the cache entry goes stale
	// readAt is when the row was read. While the database is unreachable the
	// entry is served past expires, until readAt plus the service's MaxStale.
	readAt time.Time
	// invalidated marks an entry made stale on purpose (its user or group
	// changed): it is re-read before use and never served stale.
	invalidated bool
	// hash is the stored Argon2id hash this entry was verified against: a stale
	// entry whose row still carries the same hash needs no second Argon2 run.
	hash string
}

// verifyCache remembers verified keys and, briefly, unknown digests. Both maps are
// bounded; when one is full, stale entries go first, then arbitrary ones.
type verifyCache struct {
	mu     sync.RWMutex
	pos    map[digest]*verified
	neg    map[digest]time.Time
	maxPos int
	maxNeg int
	// epoch counts evictions; a lookup that started before one must not cache its
	// result, or a key revoked mid-lookup could come back as active.
	epoch uint64
}

func newVerifyCache(maxPos, maxNeg int) *verifyCache {
	return &verifyCache{
		pos:    make(map[digest]*verified),
		neg:    make(map[digest]time.Time),
		maxPos: maxPos,
		maxNeg: maxNeg,
	}
}

// get returns the fresh entry for d, if any.
func (c *verifyCache) get(d digest, now time.Time) (*verified, bool) {
	c.mu.RLock()
	v, ok := c.pos[d]
	c.mu.RUnlock()
	if !ok || !now.Before(v.expires) {
		return nil, false
	}
	return v, true
}

// stale returns d's entry even when it has gone stale (nil when there is none, for
// example after a revocation evicted it).
func (c *verifyCache) stale(d digest) *verified {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.pos[d]
}

// unknown reports whether d was recently looked up and not found.
func (c *verifyCache) unknown(d digest, now time.Time) bool {
	c.mu.RLock()
	until, ok := c.neg[d]
	c.mu.RUnlock()
	return ok && now.Before(until)
}

func (c *verifyCache) currentEpoch() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.epoch
}

// put caches v unless an eviction happened since epoch was read, and reports
// whether it did.
func (c *verifyCache) put(d digest, v *verified, epoch uint64, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch != epoch {
		return false
	}
	if _, ok := c.pos[d]; !ok && len(c.pos) >= c.maxPos {
		shrink(c.pos, c.maxPos, func(v *verified) bool { return !now.Before(v.expires) })
	}
	c.pos[d] = v
	delete(c.neg, d)
	return true
}

// putUnknown remembers that d is not a key until the given time, and forgets
// any verified entry for it (a refresh found the row gone).
func (c *verifyCache) putUnknown(d digest, until time.Time, epoch uint64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.pos, d)
	if c.epoch != epoch {
		return
	}
	if _, ok := c.neg[d]; !ok && len(c.neg) >= c.maxNeg {
		shrink(c.neg, c.maxNeg, func(t time.Time) bool { return !now.Before(t) })
	}
	c.neg[d] = until
}

// evict forgets the key with the given hex digest and fences off lookups in flight.
func (c *verifyCache) evict(sha256hex string) {
	var d digest
	if n, err := hex.Decode(d[:], []byte(sha256hex)); err != nil || n != len(d) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.pos, d)
	delete(c.neg, d)
	c.epoch++
}

// expireUser makes the entries of a user's keys stale, so that the next lookup of
// each re-reads its row (without a second Argon2id run: the stale entry keeps its
// hash), and fences off lookups in flight, which may have read the old row. It
// scans the whole cache; it serves rare administrative changes, not requests.
func (c *verifyCache) expireUser(userID int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for d, v := range c.pos {
		if v.principal.UserID == userID {
			// A copy: readers may hold v without the lock.
			stale := *v
			stale.expires, stale.invalidated = time.Time{}, true
			c.pos[d] = &stale
		}
	}
	c.epoch++
}

// expireAll makes every entry stale (a group's limits changed: every member's
// keys re-read their rows on the next lookup, without a second Argon2id run) and
// fences off lookups in flight.
func (c *verifyCache) expireAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for d, v := range c.pos {
		stale := *v // a copy: readers may hold v without the lock
		stale.expires, stale.invalidated = time.Time{}, true
		c.pos[d] = &stale
	}
	c.epoch++
}

// size returns the number of verified and unknown entries.
func (c *verifyCache) size() (int, int) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.pos), len(c.neg)
}

// shrink frees room in a full map: stale entries first, then arbitrary ones (Go's
// map order is unspecified) until a tenth of the capacity is free.
func shrink[V any](m map[digest]V, capacity int, stale func(V) bool) {
	for k, v := range m {
		if stale(v) {
			delete(m, k)
		}
	}
	target := capacity - max(capacity/10, 1)
	for k := range m {
		if len(m) <= target {
			return
		}
		delete(m, k)
	}
}
