// Package identity authenticates API keys and manages the identities behind them:
// users, API keys and the bootstrap administrator.
//
// Keys look like "mr2_" followed by 43 base64url characters (32 random bytes). At
// rest a key is its hex SHA-256 digest (the unique lookup column) and an Argon2id PHC
// hash; the plaintext is shown once, at creation. Verify answers from a bounded,
// TTL-limited cache keyed by digest: a cache hit costs one SHA-256 and no Argon2 and
// no database round trip; a miss looks the digest up, verifies the Argon2id hash once
// (concurrent misses for one key share that work) and caches the result. Unknown
// digests are remembered briefly so that floods of bad keys do not reach the
// database. Status, expiry and the owner's state are checked on every call against
// the cached record, and Revoke evicts the cache entry at once and tells
// subscribers (Revocations) so that data-plane sessions can drop the key. UpdateUser
// makes the cached entries of the user's keys stale, so the next Verify re-reads
// the user's group, state and limits (without a second Argon2id run). A key in use
// has its row re-read in the background shortly before its entry expires, so active
// keys never wait for the database. While the database is unreachable, a key read
// less than MaxStale ago is answered from its expired entry (an entry evicted by a
// revocation, or invalidated by UpdateUser, never is). A revocation or change that lands while a row is
// being read fences that reading off: it is read again before anyone (a request that
// joined the lookup included) is answered, so no request made after Revoke or
// UpdateUser returns is answered from the old row.
//
// Usage counts (RecordUse) are kept in memory and written in batches by Run.
//
// The package owns the sentinel errors for credentials (ErrInvalidCredential, ...),
// the Principal carried in contexts, and the admin IdentityService gRPC handlers
// (AdminServer). It does not decide which gRPC methods a principal may call (the
// server's interceptor does), does not talk to the database except through the Store
// interface, and never logs or returns keys, digests or hashes, except the full key
// in the one response that creates it.
package identity
