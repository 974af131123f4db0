// Package schema defines MindRouter's ent schemas: groups, users, API keys, nodes,
// backends, models, model overrides and aliases, GPU devices, quotas, quota requests, browser sessions, telemetry
// history (metric points), settled requests (request usages) and run-time settings. It
// describes tables only; queries live in the control plane's store package.
package schema

import (
	"time"

	"entgo.io/ent"
	"entgo.io/ent/dialect"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/mixin"
)

// timeType stores times as DATETIME(6) on MariaDB: microsecond precision and no
// TIMESTAMP year-2038 limit or session time-zone conversion.
var timeType = map[string]string{dialect.MySQL: "datetime(6)"}

// TimeMixin adds created_at and updated_at to a schema.
type TimeMixin struct {
	mixin.Schema
}

// Fields returns created_at (set once) and updated_at (set on every update).
func (TimeMixin) Fields() []ent.Field {
	return []ent.Field{
		field.Time("created_at").
			Default(time.Now).
			Immutable().
			SchemaType(timeType),
		field.Time("updated_at").
			Default(time.Now).
			UpdateDefault(time.Now).
			SchemaType(timeType),
	}
}

// optionalTime returns a nullable time field.
func optionalTime(name string) ent.Field {
	return field.Time(name).Optional().Nillable().SchemaType(timeType)
}
