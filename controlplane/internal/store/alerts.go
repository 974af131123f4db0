package store

import (
	"context"
	"fmt"
	"time"

	"github.com/mindrouter/mindrouter/ent"
	"github.com/mindrouter/mindrouter/ent/alert"
)

// Alert is one raised condition of the fleet (see ent/schema/alert.go).
type Alert struct {
	ID        int64
	Kind      string
	Subject   string
	Severity  string
	Message   string
	FirstSeen time.Time
	LastSeen  time.Time
	// ClearedAt is nil while the alert is active.
	ClearedAt *time.Time
}

// AlertSpec is a condition to raise.
type AlertSpec struct {
	Kind     string
	Subject  string
	Severity string
	Message  string
}

// AlertFilter selects alerts to list. A zero Limit means 100.
type AlertFilter struct {
	ActiveOnly bool
	Kind       string
	Limit      int
}

// RaiseAlert records a new active alert first and last seen at at.
func (s *Store) RaiseAlert(ctx context.Context, spec AlertSpec, at time.Time) (Alert, error) {
	op := fmt.Sprintf("raise alert %s %s", spec.Kind, spec.Subject)
	sev := alert.Severity(spec.Severity)
	if err := alert.SeverityValidator(sev); err != nil {
		return Alert{}, invalid(op, "unknown severity %q (want warning or critical)", spec.Severity)
	}
	a, err := s.c(ctx).Alert.Create().
		SetKind(spec.Kind).SetSubject(spec.Subject).SetSeverity(sev).
		SetMessage(truncate(spec.Message, 1024)).
		SetFirstSeen(at.UTC()).SetLastSeen(at.UTC()).
		Save(ctx)
	if err != nil {
		return Alert{}, dbErr(op, err)
	}
	return toAlert(a), nil
}

// TouchAlert records that an active alert's condition still holds at at, with its
// current message.
func (s *Store) TouchAlert(ctx context.Context, id int64, message string, at time.Time) error {
	err := s.c(ctx).Alert.UpdateOneID(int(id)).SetLastSeen(at.UTC()).SetMessage(truncate(message, 1024)).Exec(ctx)
	return dbErr(fmt.Sprintf("touch alert %d", id), err)
}

// ClearAlert marks an alert cleared at at.
func (s *Store) ClearAlert(ctx context.Context, id int64, at time.Time) error {
	err := s.c(ctx).Alert.UpdateOneID(int(id)).SetClearedAt(at.UTC()).Exec(ctx)
	return dbErr(fmt.Sprintf("clear alert %d", id), err)
}

// ListAlerts returns alerts, newest first.
func (s *Store) ListAlerts(ctx context.Context, f AlertFilter) ([]Alert, error) {
	q := s.c(ctx).Alert.Query()
	if f.ActiveOnly {
		q = q.Where(alert.ClearedAtIsNil())
	}
	if f.Kind != "" {
		q = q.Where(alert.KindEQ(f.Kind))
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	rows, err := q.Order(ent.Desc(alert.FieldFirstSeen), ent.Desc(alert.FieldID)).Limit(limit).All(ctx)
	if err != nil {
		return nil, dbErr("list alerts", err)
	}
	out := make([]Alert, len(rows))
	for i, a := range rows {
		out[i] = toAlert(a)
	}
	return out, nil
}

// ActiveAlerts returns every active alert, for an evaluator taking over.
func (s *Store) ActiveAlerts(ctx context.Context) ([]Alert, error) {
	rows, err := s.c(ctx).Alert.Query().Where(alert.ClearedAtIsNil()).Order(ent.Asc(alert.FieldID)).All(ctx)
	if err != nil {
		return nil, dbErr("list active alerts", err)
	}
	out := make([]Alert, len(rows))
	for i, a := range rows {
		out[i] = toAlert(a)
	}
	return out, nil
}

func toAlert(a *ent.Alert) Alert {
	return Alert{
		ID: int64(a.ID), Kind: a.Kind, Subject: a.Subject, Severity: string(a.Severity), Message: a.Message,
		FirstSeen: utc(a.FirstSeen), LastSeen: utc(a.LastSeen), ClearedAt: utcPtr(a.ClearedAt),
	}
}
