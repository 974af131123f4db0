package store

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"entgo.io/ent/dialect"

	"github.com/mindrouter/mindrouter/ent"
	"github.com/mindrouter/mindrouter/ent/adminaction"
	"github.com/mindrouter/mindrouter/ent/predicate"
)

// Actor is who makes a change through the admin API, and from where.
type Actor struct {
	UserID   int64
	Username string
	ClientIP string
}

// AdminAction is one recorded change (or one read of audit content).
type AdminAction struct {
	ID          int64
	CreatedAt   time.Time
	ActorUserID int64
	Actor       string
	Action      string
	EntityType  string
	EntityID    string
	// BeforeJSON and AfterJSON hold the changed fields before and after (a
	// creation has no before, a deletion no after). Secrets are redacted.
	BeforeJSON string
	AfterJSON  string
	ClientIP   string
	Detail     string
}

// auditedTx is the transaction an audited call runs in: every store call made
// with its context joins it, and every mutation in it is recorded. It begins at
// the call's first store call, not before, so that work done before touching
// the database (Argon2 hashing above all) holds no transaction open.
type auditedTx struct {
	mu       sync.Mutex
	client   *ent.Client
	ctx      context.Context // the call's, for BEGIN
	tx       *ent.Tx
	beginErr error
	done     bool
	actor    Actor
	method   string
	actions  int
	// committed runs after the transaction commits (AfterCommit).
	committed []func()
}

type auditedTxKey struct{}

func auditedFrom(ctx context.Context) *auditedTx {
	a, _ := ctx.Value(auditedTxKey{}).(*auditedTx)
	return a
}

// join returns the transaction while the audited call is still running,
// beginning it on first use; ok is false outside an audited call (or after it
// ended), and err is the failure to begin.
func (a *auditedTx) join() (tx *ent.Tx, ok bool, err error) {
	if a == nil {
		return nil, false, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.done {
		return nil, false, nil
	}
	if a.tx == nil && a.beginErr == nil {
		a.tx, a.beginErr = a.client.Tx(a.ctx)
		if a.beginErr != nil {
			a.beginErr = fmt.Errorf("begin audited %s: %w", a.method, a.beginErr)
		}
	}
	return a.tx, true, a.beginErr
}

// active reports whether the call's transaction has begun and not ended.
func (a *auditedTx) active() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return !a.done && a.tx != nil
}

// c returns the client a store call with ctx uses: the audited call's
// transaction when there is one, the store's client otherwise. When that
// transaction cannot begin, every statement of the returned client fails with
// the reason (never silently outside the transaction).
func (s *Store) c(ctx context.Context) *ent.Client {
	tx, ok, err := auditedFrom(ctx).join()
	switch {
	case !ok:
		return s.client
	case err != nil:
		return ent.NewClient(ent.Driver(failedDriver{err: err, dialect: s.driver}))
	}
	return tx.Client()
}

// failedDriver answers every statement with err.
type failedDriver struct {
	err     error
	dialect string
}

func (d failedDriver) Exec(context.Context, string, any, any) error  { return d.err }
func (d failedDriver) Query(context.Context, string, any, any) error { return d.err }
func (d failedDriver) Tx(context.Context) (dialect.Tx, error)        { return nil, d.err }
func (d failedDriver) Close() error                                  { return nil }
func (d failedDriver) Dialect() string                               { return d.dialect }

// RunAudited runs fn, an admin call made by actor (method names it), in one
// database transaction: every store call fn makes with the context it is given
// joins that transaction, and every row they create, change or delete is
// recorded as an AdminAction inside it, so that a change and its record commit
// or roll back together. A call that changes no row is recorded once under
// method. fn's error rolls everything back. The transaction begins at fn's
// first store call: what fn does before (hashing a secret) holds no locks.
func (s *Store) RunAudited(ctx context.Context, actor Actor, method string, fn func(ctx context.Context) error) error {
	if auditedFrom(ctx) != nil {
		return fn(ctx)
	}
	a := &auditedTx{client: s.client, ctx: ctx, actor: actor, method: method}
	finish := func() *ent.Tx {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.done = true
		return a.tx
	}
	if err := fn(context.WithValue(ctx, auditedTxKey{}, a)); err != nil {
		if tx := finish(); tx != nil {
			_ = tx.Rollback()
		}
		return err
	}
	tx := finish()
	if a.beginErr != nil {
		return a.beginErr
	}
	if tx == nil {
		var err error
		if tx, err = s.client.Tx(ctx); err != nil {
			return fmt.Errorf("begin audited %s: %w", method, err)
		}
	}
	if a.actions == 0 {
		if err := insertAction(ctx, tx.Client(), a, methodAction(method), "", "", nil, nil); err != nil {
			_ = tx.Rollback()
			return dbErr("record admin action", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit audited %s: %w", method, err)
	}
	a.mu.Lock()
	hooks := a.committed // done: no more are added
	a.mu.Unlock()
	for _, fn := range hooks {
		fn()
	}
	return nil
}

// AfterCommit runs fn once the changes made with ctx are in the database: when
// ctx's audited call commits, and never if it rolls back. Outside an audited
// call (each statement commits on its own) fn runs at once. It is how a copy
// kept in memory follows the database without running ahead of it.
func (s *Store) AfterCommit(ctx context.Context, fn func()) {
	a := auditedFrom(ctx)
	if a == nil {
		fn()
		return
	}
	a.mu.Lock()
	if a.done {
		a.mu.Unlock()
		fn()
		return
	}
	a.committed = append(a.committed, fn)
	a.mu.Unlock()
}

// methodAction names the action of a call that changed no row:
// "/mindrouter.admin.v1.RegistryService/DrainBackend" -> "registry.drain_backend".
func methodAction(method string) string {
	svc, name, _ := strings.Cut(strings.TrimPrefix(method, "/"), "/")
	if i := strings.LastIndex(svc, "."); i >= 0 {
		svc = svc[i+1:]
	}
	return snake(strings.TrimSuffix(svc, "Service")) + "." + snake(name)
}

// snake turns a Go name into snake case, keeping acronyms whole:
// "APIKey" -> "api_key", "DrainBackend" -> "drain_backend".
func snake(s string) string {
	upper := func(i int) bool { return i >= 0 && i < len(s) && s[i] >= 'A' && s[i] <= 'Z' }
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if upper(i) {
			if i > 0 && (!upper(i-1) || (i+1 < len(s) && !upper(i+1))) {
				b.WriteByte('_')
			}
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String()
}

// RecordAdminAction stores one action on its own (a read of audit content, a
// retention purge), joining an audited call's transaction when ctx has one.
func (s *Store) RecordAdminAction(ctx context.Context, act AdminAction) error {
	err := s.c(ctx).AdminAction.Create().
		SetCreatedAt(time.Now().UTC()).SetActorUserID(act.ActorUserID).SetActor(clip(act.Actor, 150)).
		SetAction(clip(act.Action, 64)).SetEntityType(clip(act.EntityType, 32)).SetEntityID(clip(act.EntityID, 128)).
		SetNillableBeforeJSON(nonEmpty(act.BeforeJSON)).SetNillableAfterJSON(nonEmpty(act.AfterJSON)).
		SetClientIP(clip(act.ClientIP, 64)).SetDetail(act.Detail).Exec(ctx)
	return dbErr("record admin action", err)
}

func insertAction(ctx context.Context, c *ent.Client, a *auditedTx, action, entityType, entityID string, before, after map[string]any) error {
	return c.AdminAction.Create().
		SetCreatedAt(time.Now().UTC()).SetActorUserID(a.actor.UserID).SetActor(clip(a.actor.Username, 150)).
		SetAction(clip(action, 64)).SetEntityType(clip(entityType, 32)).SetEntityID(clip(entityID, 128)).
		SetNillableBeforeJSON(jsonOf(before)).SetNillableAfterJSON(jsonOf(after)).
		SetClientIP(clip(a.actor.ClientIP, 64)).SetDetail(a.method).Exec(ctx)
}

func jsonOf(m map[string]any) *string {
	if len(m) == 0 {
		return nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil
	}
	s := string(b)
	return &s
}

// secretFields are never written into an action's before/after values.
var secretFields = map[string]bool{
	"password_hash": true, "key_hash": true, "key_sha256": true, "token_sha256": true,
	"csrf_token": true, "agent_secret_sha256": true, "sidecar_key": true,
}

// notAudited are the tables the audit trail itself writes.
var notAudited = map[string]bool{"AdminAction": true, "AuditRecord": true, "AuditArtifact": true}

// auditHook records every mutation made inside an audited call, with the
// changed fields' old and new values, in the call's transaction.
func (s *Store) auditHook(next ent.Mutator) ent.Mutator {
	return ent.MutateFunc(func(ctx context.Context, m ent.Mutation) (ent.Value, error) {
		a := auditedFrom(ctx)
		if a == nil || notAudited[m.Type()] || !a.active() {
			return next.Mutate(ctx, m)
		}
		entityID := ""
		if idm, ok := m.(interface{ ID() (int, bool) }); ok {
			if id, ok := idm.ID(); ok {
				entityID = strconv.Itoa(id)
			}
		}
		before, after := map[string]any{}, map[string]any{}
		old, canOld := m.(interface {
			OldField(context.Context, string) (ent.Value, error)
		})
		for _, f := range m.Fields() {
			v, _ := m.Field(f)
			after[f] = redact(f, v)
			if m.Op().Is(ent.OpUpdateOne) && canOld {
				if ov, err := old.OldField(ctx, f); err == nil {
					before[f] = redact(f, ov)
				}
			}
		}
		for _, f := range m.ClearedFields() {
			after[f] = nil
		}
		if m.Op().Is(ent.OpDeleteOne) && entityID != "" {
			before["id"] = entityID
		}
		v, err := next.Mutate(ctx, m)
		if err != nil {
			return v, err
		}
		if entityID == "" {
			entityID = valueID(v)
		}
		if m.Op().Is(ent.OpUpdate | ent.OpDelete) {
			entityID = "*"
		}
		a.mu.Lock()
		a.actions++
		a.mu.Unlock()
		action := snake(m.Type()) + "." + opName(m.Op())
		if err := insertAction(ctx, m.(interface{ Client() *ent.Client }).Client(), a, action, snake(m.Type()), entityID, before, after); err != nil {
			return v, dbErr("record admin action", err)
		}
		return v, nil
	})
}

func opName(op ent.Op) string {
	switch {
	case op.Is(ent.OpCreate):
		return "create"
	case op.Is(ent.OpDelete | ent.OpDeleteOne):
		return "delete"
	}
	return "update"
}

func redact(field string, v ent.Value) ent.Value {
	if secretFields[field] {
		return "[redacted]"
	}
	return v
}

// valueID reads the ID of an entity a create returned.
func valueID(v ent.Value) string {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer && !rv.IsNil() {
		if f := rv.Elem().FieldByName("ID"); f.IsValid() && f.CanInt() {
			return strconv.FormatInt(f.Int(), 10)
		}
	}
	return ""
}

// AdminActionFilter selects admin actions; zero fields match everything.
type AdminActionFilter struct {
	ActorUserID int64
	// Action is exact, or a prefix when it ends in ".".
	Action     string
	EntityType string
	EntityID   string
	Start, End time.Time
}

// SearchAdminActions returns up to limit actions matching f, newest first, and
// the next page's cursor ("" after the last).
func (s *Store) SearchAdminActions(ctx context.Context, f AdminActionFilter, cursor string, limit int) ([]AdminAction, string, error) {
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, MaxAuditPage)
	after, err := decodeCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	var p []predicate.AdminAction
	if f.ActorUserID != 0 {
		p = append(p, adminaction.ActorUserID(f.ActorUserID))
	}
	switch {
	case strings.HasSuffix(f.Action, "."):
		p = append(p, adminaction.ActionHasPrefix(f.Action))
	case f.Action != "":
		p = append(p, adminaction.Action(f.Action))
	}
	if f.EntityType != "" {
		p = append(p, adminaction.EntityType(f.EntityType))
	}
	if f.EntityID != "" {
		p = append(p, adminaction.EntityID(f.EntityID))
	}
	if !f.Start.IsZero() {
		p = append(p, adminaction.CreatedAtGTE(f.Start.UTC()))
	}
	if !f.End.IsZero() {
		p = append(p, adminaction.CreatedAtLT(f.End.UTC()))
	}
	if after > 0 {
		p = append(p, adminaction.IDLT(int(after)))
	}
	rows, err := s.client.AdminAction.Query().Where(p...).Order(ent.Desc(adminaction.FieldID)).Limit(limit + 1).All(ctx)
	if err != nil {
		return nil, "", dbErr("search admin actions", err)
	}
	next := ""
	if len(rows) > limit {
		rows = rows[:limit]
		next = encodeCursor(int64(rows[limit-1].ID))
	}
	out := make([]AdminAction, len(rows))
	for i, r := range rows {
		out[i] = AdminAction{
			ID: int64(r.ID), CreatedAt: utc(r.CreatedAt), ActorUserID: r.ActorUserID, Actor: r.Actor, Action: r.Action,
			EntityType: r.EntityType, EntityID: r.EntityID, BeforeJSON: deref(r.BeforeJSON), AfterJSON: deref(r.AfterJSON),
			ClientIP: r.ClientIP, Detail: r.Detail,
		}
	}
	return out, next, nil
}

type actorKey struct{}

// NewActorContext returns ctx carrying the caller of an admin call.
func NewActorContext(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFromContext returns the caller NewActorContext stored, if any.
func ActorFromContext(ctx context.Context) (Actor, bool) {
	a, ok := ctx.Value(actorKey{}).(Actor)
	return a, ok
}

// ReadBeforeTx returns ctx for reads an audited call makes before it changes
// anything (the stored hash a password check compares with): they use the
// store's client and do not begin the call's transaction, so that slow work
// between them and the first write (Argon2) holds no transaction open. A
// change made with it would not be recorded: use it for reads only.
func ReadBeforeTx(ctx context.Context) context.Context {
	if auditedFrom(ctx) == nil {
		return ctx
	}
	return context.WithValue(ctx, auditedTxKey{}, (*auditedTx)(nil))
}
