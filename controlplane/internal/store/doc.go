// Package store is the control plane's database: groups, users, API keys, nodes,
// backends, models and GPU inventory, kept with ent on SQLite (the embedded default)
// or MariaDB.
//
// It is the only package that imports the ent module. It hands out plain domain
// structs (Group, User, APIKey, Node, Backend, Model, GPUDevice), never ent types,
// and reports failures with the sentinels ErrNotFound, ErrConflict, ErrInUse and
// ErrInvalid, which callers test with errors.Is.
//
// Open migrates the schema additively with ent's auto-migration, on MariaDB while
// holding the named lock "mindrouter_migrate:<database>" so that several control planes can
// start at once (docs/adr/0001-schema-migration.md), and seeds the default groups:
//
//	name     weight  token budget  rpm  privileges  key expiry  max keys
//	admin    10      0 (no limit)  0    is_admin    never       no limit
//	auditor  1       100000        30   is_auditor  45 days     8
//	faculty  3       1000000       60   -           45 days     8
//	staff    2       500000        60   -           45 days     8
//	student  1       100000        30   -           45 days     8
//
// A budget, rate limit, expiry or key limit of 0 means unlimited. Seeding only
// inserts missing groups; it never changes a group an administrator has edited.
//
// The store holds no caches and makes no authorization decisions; those belong to
// the identity, registry and server packages. It must not log secrets: hashes and
// digests pass through it but are never logged or formatted into errors.
package store
