package store

import (
	"context"
	"time"

	"github.com/mindrouter/mindrouter/ent"
	"github.com/mindrouter/mindrouter/ent/setting"
)

// Setting returns the value stored under key and when it was last written;
// ok is false when the key was never written.
func (s *Store) Setting(ctx context.Context, key string) (value string, updated time.Time, ok bool, err error) {
	row, err := s.c(ctx).Setting.Query().Where(setting.Key(key)).Only(ctx)
	if ent.IsNotFound(err) {
		return "", time.Time{}, false, nil
	}
	if err != nil {
		return "", time.Time{}, false, dbErr("read setting", err)
	}
	return row.Value, row.UpdatedAt, true, nil
}

// PutSetting stores value under key, creating or replacing the row. Inside an
// audited call the change is recorded as a setting.create or setting.update
// admin action with the old and new values.
func (s *Store) PutSetting(ctx context.Context, key, value string) error {
	const op = "store setting"
	if key == "" || len(key) > 64 {
		return invalid(op, "setting key must be 1 to 64 characters")
	}
	c := s.c(ctx)
	row, err := c.Setting.Query().Where(setting.Key(key)).Only(ctx)
	switch {
	case ent.IsNotFound(err):
		err = c.Setting.Create().SetKey(key).SetValue(value).Exec(ctx)
	case err == nil:
		err = c.Setting.UpdateOne(row).SetValue(value).Exec(ctx)
	}
	return dbErr(op, err)
}
