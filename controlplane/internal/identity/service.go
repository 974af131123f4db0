package identity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

// Store is the part of the control plane's store this package uses.
type Store interface {
	KeyByDigest(ctx context.Context, sha256hex string) (store.KeyRecord, error)
	CreateAPIKey(ctx context.Context, spec store.APIKeySpec) (store.APIKey, error)
	ListAPIKeys(ctx context.Context, f store.APIKeyFilter) ([]store.APIKey, error)
	CountActiveKeys(ctx context.Context, userID int64) (int, error)
	RevokeAPIKey(ctx context.Context, id int64) (store.APIKey, error)
	RecordKeyUse(ctx context.Context, uses map[int64]store.KeyUse) error
	CreateUser(ctx context.Context, spec store.UserSpec) (store.User, error)
	UpdateUser(ctx context.Context, id int64, p store.UserPatch) (store.User, error)
	GetUser(ctx context.Context, id int64) (store.User, error)
	GetUserByUsername(ctx context.Context, username string) (store.User, error)
	ListUsers(ctx context.Context, f store.UserFilter) ([]store.User, int64, error)
	CountUsers(ctx context.Context) (int64, error)
	ListGroups(ctx context.Context) ([]store.Group, error)
	GetGroup(ctx context.Context, id int64) (store.Group, error)
	GetGroupByName(ctx context.Context, name string) (store.Group, error)
	UpdateGroup(ctx context.Context, id int64, p store.GroupPatch) (store.Group, error)
}

// Options tune a Service; zero values take the defaults.
type Options struct {
	// CacheTTL is how long a verified key is trusted without the database: 60 s.
	CacheTTL time.Duration
	// RefreshAhead is how long before its entry expires a key in use has its
	// row re-read in the background, so that requests never wait for the
	// lookup: CacheTTL/6 (10 s). An entry is not used past CacheTTL while the
	// database answers.
	RefreshAhead time.Duration
	// MaxStale is how long after its row was last read a cached key keeps
	// working while the database is unreachable: DefaultMaxStale (1 h). Keys
	// revoked, and users changed, through this process before or during the
	// outage are refused regardless.
	MaxStale time.Duration
	// NegativeTTL is how long an unknown key is remembered: 5 s.
	NegativeTTL time.Duration
	// CacheSize bounds the verified keys cached: 100 000.
	CacheSize int
	// NegativeCacheSize bounds the unknown keys remembered: 10 000.
	NegativeCacheSize int
	// MaxConcurrentHashes bounds Argon2id computations at once (64 MiB each): 4.
	MaxConcurrentHashes int
	// FlushInterval is how often Run writes usage counts: 10 s.
	FlushInterval time.Duration
	Now           func() time.Time
	Logger        *slog.Logger
	Registerer    prometheus.Registerer
}

// Service authenticates API keys and manages users and keys. It is safe for
// concurrent use.
type Service struct {
	st          Store
	log         *slog.Logger
	now         func() time.Time
	cacheTTL    time.Duration
	negativeTTL time.Duration
	flushEvery  time.Duration
	keyParams   argonParams
	pwParams    argonParams

	// refreshAhead: see Options.RefreshAhead; refreshing holds the digests
	// whose background refresh is under way; refreshes run on bgCtx, which
	// Run cancels when it stops, and are counted in bg.
	refreshAhead time.Duration
	refreshing   sync.Map
	bgCtx        context.Context
	stopBg       context.CancelFunc
	bg           sync.WaitGroup

	// maxStale: see Options.MaxStale. dbDownSince is when reads of key rows
	// started failing to reach the database (unix ns; 0 while they succeed);
	// nextProbe is when a stale serve may next start a background read.
	maxStale    time.Duration
	dbDownSince atomic.Int64
	nextProbe   atomic.Int64

	cache   *verifyCache
	flight  singleflight.Group
	hashSem chan struct{}
	metrics *metrics

	subMu sync.Mutex
	subs  map[chan string]struct{}

	usageMu sync.Mutex
	usage   map[int64]store.KeyUse
}

// revocationBuffer is each subscriber's channel capacity.
const revocationBuffer = 64

// lookupTimeout bounds a shared cache-miss lookup, which runs detached from any
// one caller's context.
const lookupTimeout = 10 * time.Second

// New returns a Service over st.
func New(st Store, opts Options) *Service {
	s := &Service{
		st:          st,
		log:         opts.Logger,
		now:         opts.Now,
		cacheTTL:    orDefault(opts.CacheTTL, 60*time.Second),
		negativeTTL: orDefault(opts.NegativeTTL, 5*time.Second),
		maxStale:    orDefault(opts.MaxStale, DefaultMaxStale),
		flushEvery:  orDefault(opts.FlushInterval, 10*time.Second),
		keyParams:   keyParams,
		pwParams:    passwordParams,
		cache:       newVerifyCache(orDefault(opts.CacheSize, 100_000), orDefault(opts.NegativeCacheSize, 10_000)),
		hashSem:     make(chan struct{}, orDefault(opts.MaxConcurrentHashes, 4)),
		subs:        map[chan string]struct{}{},
		usage:       map[int64]store.KeyUse{},
	}
	s.refreshAhead = min(orDefault(opts.RefreshAhead, s.cacheTTL/6), s.cacheTTL)
	s.bgCtx, s.stopBg = context.WithCancel(context.Background())
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.metrics = newMetrics(opts.Registerer, s.log, s.cache.size, s.unreachableFor)
	return s
}

func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// Verify authenticates an API key and returns its principal. Malformed keys are
// refused before any lookup; a cached key costs neither Argon2 nor the database.
// While the database is unreachable a key read in the last MaxStale is answered
// from its expired entry. Errors are ErrInvalidCredential, ErrCredentialRevoked,
// ErrCredentialExpired, ErrUserInactive, a context error, or a wrapped store
// error (store.ErrUnavailable when the database cannot be read).
func (s *Service) Verify(ctx context.Context, credential string) (Principal, error) {
	if !WellFormedKey(credential) {
		return Principal{}, s.reject(reasonMalformed, ErrInvalidCredential)
	}
	d := digestOf(credential)
	now := s.now()
	if v, ok := s.cache.get(d, now); ok {
		s.metrics.cacheHit.Inc()
		if !now.Before(v.expires.Add(-s.refreshAhead)) {
			s.refreshIfDue(credential, d, now)
		}
		return s.check(v, now)
	}
	if s.cache.unknown(d, now) {
		s.metrics.cacheNegativeHit.Inc()
		return Principal{}, s.reject(reasonUnknown, ErrInvalidCredential)
	}
	if v, ok := s.serveStale(credential, d, now); ok {
		return s.check(v, now)
	}
	s.metrics.cacheMiss.Inc()
	p, err := s.verifyMiss(ctx, credential, d)
	if err != nil && unreachable(err) {
		// The read that found the database gone: an entry read recently enough
		// stands in for it, as it will for the requests after this one.
		now = s.now()
		v, tooOld := s.usableStale(d, now)
		if v != nil {
			s.metrics.staleServed.Inc()
			return s.check(v, now)
		}
		if tooOld {
			s.metrics.staleTooOld.Inc()
		}
	}
	return p, err
}

// refreshSoon re-reads the row of a key in use whose cache entry is about to
// expire, in the background and once at a time per key, so that an active key
// never makes a request wait for its lookup. Revocations and changes made
// outside this process (directly in the database) are seen sooner too. A
// failed refresh leaves the entry to expire as usual; when the database is
// unreachable, the expired entry is served for up to MaxStale (serveStale).
func (s *Service) refreshSoon(credential string, d digest) {
	if _, busy := s.refreshing.LoadOrStore(d, struct{}{}); busy {
		return
	}
	s.bg.Go(func() {
		defer s.refreshing.Delete(d)
		_, err, _ := s.flight.Do(string(d[:]), func() (any, error) {
			ctx, cancel := context.WithTimeout(s.bgCtx, lookupTimeout)
			defer cancel()
			return s.load(ctx, credential, d, false)
		})
		switch {
		case err == nil:
			s.metrics.refreshOK.Inc()
		case errors.Is(err, ErrInvalidCredential):
			// The row is gone: load forgot the entry and remembered the key
			// as unknown.
			s.metrics.refreshOK.Inc()
		case s.bgCtx.Err() != nil:
			// The service is stopping.
		case unreachable(err):
			// noteRead logged the outage once; its cause is in that line.
			s.metrics.refreshFailed.Inc()
		default:
			s.metrics.refreshFailed.Inc()
			s.log.Warn("refresh of a cached API key failed; it will be looked up when it expires",
				slog.String("key_prefix", DisplayPrefix(credential)), slog.Any("error", err))
		}
	})
}

// stopRefreshes cancels the background refreshes and waits for them.
func (s *Service) stopRefreshes() {
	s.stopBg()
	s.bg.Wait()
}

// verifyMiss shares one lookup and Argon2 verification among concurrent callers
// with the same key. The lookup runs detached from any one caller's context; each
// caller waits on its own. (A function of its own so that the hit path's digest
// stays on the stack.)
func (s *Service) verifyMiss(ctx context.Context, credential string, d digest) (Principal, error) {
	ch := s.flight.DoChan(string(d[:]), func() (any, error) {
		// A caller that missed the cache just before another flight for the key
		// ended starts a new flight: the answer may be cached by now.
		if v, ok := s.cache.get(d, s.now()); ok {
			return v, nil
		}
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lookupTimeout)
		defer cancel()
		return s.load(lctx, credential, d, true)
	})
	select {
	case <-ctx.Done():
		return Principal{}, ctx.Err()
	case r := <-ch:
		if r.Err != nil {
			return Principal{}, r.Err
		}
		return s.check(r.Val.(*verified), s.now())
	}
}

// maxLoadReads bounds how often load reads a key's row when evictions keep
// fencing off what it read.
const maxLoadReads = 3

// load looks a key up by digest, verifies its Argon2id hash and caches the
// result. A revocation or other change that evicts the key while its row is
// being read fences the result off from the cache; load then reads the row
// again, so that no caller (a request that joined the lookup included) is
// answered from the row as it was before the change. Only if changes keep
// coming maxLoadReads times is the last reading returned uncached. counted
// says whether refusals count as rejected requests (not for a background
// refresh).
func (s *Service) load(ctx context.Context, credential string, d digest, counted bool) (*verified, error) {
	for read := 1; ; read++ {
		epoch := s.cache.currentEpoch()
		readAt := s.now()
		rec, err := s.st.KeyByDigest(ctx, KeyDigest(credential))
		if err != nil && ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded) {
			// The lookup's own deadline: the database did not answer in time.
			err = store.Unavailable(fmt.Errorf("no answer to a key lookup in %s", lookupTimeout))
		}
		s.noteRead(err)
		if errors.Is(err, store.ErrNotFound) {
			s.cache.putUnknown(d, s.now().Add(s.negativeTTL), epoch, s.now())
			return nil, s.refuse(counted, reasonUnknown, ErrInvalidCredential)
		}
		if err != nil {
			return nil, fmt.Errorf("verify API key %s: %w", DisplayPrefix(credential), err)
		}
		// The key's own digest found this row. When this process already verified the
		// same stored hash (a stale cache entry), the Argon2id check would repeat a known
		// answer: refreshing the row's status, expiry and owner is all that expiry of the
		// cache entry is for. Only a first sighting, or a changed hash, pays for Argon2id.
		if prev := s.cache.stale(d); prev == nil || prev.hash == "" || prev.hash != rec.Key.Hash {
			if err := s.checkHash(ctx, credential, d, rec, epoch, counted); err != nil {
				return nil, err
			}
		}
		v := newVerified(rec)
		v.readAt = readAt
		v.expires = s.now().Add(s.cacheTTL)
		if s.cache.put(d, v, epoch, s.now()) || read == maxLoadReads {
			return v, nil
		}
	}
}

// checkHash verifies the credential against the row's Argon2id hash, remembering a
// mismatch as an unknown key.
func (s *Service) checkHash(ctx context.Context, credential string, d digest, rec store.KeyRecord, epoch uint64, counted bool) error {
	if err := s.acquireHash(ctx); err != nil {
		return fmt.Errorf("verify API key %s: %w", DisplayPrefix(credential), err)
	}
	s.metrics.argon2.Inc()
	ok, err := verifyArgon2id(rec.Key.Hash, credential)
	s.releaseHash()
	if err != nil || !ok {
		if err != nil {
			s.log.ErrorContext(ctx, "stored API key hash unusable", slog.Int64("api_key_id", rec.Key.ID), slog.Any("error", err))
		}
		s.cache.putUnknown(d, s.now().Add(s.negativeTTL), epoch, s.now())
		return s.refuse(counted, reasonHashMismatch, ErrInvalidCredential)
	}
	return nil
}

func newVerified(rec store.KeyRecord) *verified {
	k, u, g := rec.Key, rec.User, rec.Group
	p := Principal{
		UserID:      u.ID,
		Username:    u.Username,
		APIKeyID:    k.ID,
		KeyPrefix:   k.Prefix,
		GroupID:     g.ID,
		Group:       g.Name,
		IsAdmin:     g.IsAdmin,
		IsAuditor:   g.IsAuditor,
		Scopes:      k.Scopes,
		Weight:      g.SchedulerWeight,
		RPMLimit:    g.RPMLimit,
		TokenBudget: g.TokenBudget,
	}
	if u.WeightOverride != nil {
		p.Weight = *u.WeightOverride
	}
	if u.RPMLimit != nil {
		p.RPMLimit = *u.RPMLimit
	}
	if u.TokenBudget != nil {
		p.TokenBudget = *u.TokenBudget
	}
	if k.RPMLimit != nil {
		p.KeyRPMLimit = *k.RPMLimit
	}
	v := &verified{principal: p, status: k.Status, userActive: u.IsActive && u.DeletedAt == nil, hash: k.Hash}
	if k.ExpiresAt != nil {
		v.expiresAt = *k.ExpiresAt
	}
	return v
}

// check applies the per-call checks to a verified key.
func (s *Service) check(v *verified, now time.Time) (Principal, error) {
	switch {
	case v.status == store.KeyRevoked:
		return Principal{}, s.reject(reasonRevoked, ErrCredentialRevoked)
	case v.status == store.KeyExpired, !v.expiresAt.IsZero() && !now.Before(v.expiresAt):
		return Principal{}, s.reject(reasonExpired, ErrCredentialExpired)
	case v.status != store.KeyActive:
		return Principal{}, s.reject(reasonRevoked, ErrCredentialRevoked)
	case !v.userActive:
		return Principal{}, s.reject(reasonUserInactive, ErrUserInactive)
	}
	return v.principal, nil
}

func (s *Service) reject(reason string, err error) error {
	s.metrics.rejections[reason].Inc()
	return err
}

// refuse is reject when counted, and err alone otherwise.
func (s *Service) refuse(counted bool, reason string, err error) error {
	if counted {
		return s.reject(reason, err)
	}
	return err
}

func (s *Service) acquireHash(ctx context.Context) error {
	select {
	case s.hashSem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Service) releaseHash() { <-s.hashSem }

// hash computes an Argon2id hash under the concurrency bound.
func (s *Service) hash(ctx context.Context, secret string, p argonParams) (string, error) {
	if err := s.acquireHash(ctx); err != nil {
		return "", err
	}
	defer s.releaseHash()
	return hashArgon2id(secret, p)
}

// Revoke revokes a key, forgets it at once and tells Revocations subscribers its
// prefix. Revoking a revoked key succeeds.
func (s *Service) Revoke(ctx context.Context, keyID int64) (store.APIKey, error) {
	k, err := s.st.RevokeAPIKey(ctx, keyID)
	if err != nil {
		return store.APIKey{}, err
	}
	s.cache.evict(k.SHA256)
	s.notify(k.Prefix)
	s.log.InfoContext(ctx, "API key revoked", slog.Int64("api_key_id", k.ID), slog.String("key_prefix", k.Prefix))
	return k, nil
}

// Revocations subscribes to revoked key prefixes. Delivery never blocks the
// revoker: a subscriber whose buffer is full misses notifications (counted in a
// metric). cancel unsubscribes and closes the channel.
func (s *Service) Revocations() (<-chan string, func()) {
	ch := make(chan string, revocationBuffer)
	s.subMu.Lock()
	s.subs[ch] = struct{}{}
	s.subMu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			s.subMu.Lock()
			delete(s.subs, ch)
			close(ch)
			s.subMu.Unlock()
		})
	}
}

func (s *Service) notify(prefix string) {
	s.subMu.Lock()
	defer s.subMu.Unlock()
	for ch := range s.subs {
		select {
		case ch <- prefix:
		default:
			s.metrics.revocationDrops.Inc()
		}
	}
}
