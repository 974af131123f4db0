package system

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// memStore is an in-memory settings table.
type memStore struct {
	values map[string]string
	fail   error
}

func (m *memStore) Setting(_ context.Context, key string) (string, time.Time, bool, error) {
	if m.fail != nil {
		return "", time.Time{}, false, m.fail
	}
	v, ok := m.values[key]
	return v, time.Time{}, ok, nil
}

func (m *memStore) PutSetting(_ context.Context, key, value string) error {
	if m.fail != nil {
		return m.fail
	}
	m.values[key] = value
	return nil
}

// AfterCommit runs fn at once: each write commits on its own.
func (m *memStore) AfterCommit(_ context.Context, fn func()) { fn() }

func TestSwitchStoresAndRestoresItsPosition(t *testing.T) {
	t.Parallel()
	st := &memStore{values: map[string]string{}}
	sw := New(st)
	require.NoError(t, sw.Load(t.Context()), "nothing stored: online")
	_, off := sw.Offline()
	assert.False(t, off)

	got, err := sw.Set(t.Context(), true, "  driver upgrade until 14:00  ", "ada")
	require.NoError(t, err)
	assert.Equal(t, "driver upgrade until 14:00", got.Message)
	assert.Equal(t, "ada", got.ChangedBy)
	msg, off := sw.Offline()
	assert.True(t, off)
	assert.Equal(t, "driver upgrade until 14:00", msg)

	// A new control plane (a restart, a new leader) finds it offline.
	again := New(st)
	require.NoError(t, again.Load(t.Context()))
	msg, off = again.Offline()
	assert.True(t, off)
	assert.Equal(t, "driver upgrade until 14:00", msg)
	assert.Equal(t, "ada", again.State().ChangedBy)

	got, err = again.Set(t.Context(), false, "ignored", "bob")
	require.NoError(t, err)
	assert.Empty(t, got.Message, "online has no message")
	_, off = again.Offline()
	assert.False(t, off)
}

func TestSwitchRefusals(t *testing.T) {
	t.Parallel()
	st := &memStore{values: map[string]string{}}
	sw := New(st)
	for _, msg := range []string{"", "   ", strings.Repeat("é", MaxMessage+1), "\xff\xfe"} {
		_, err := sw.Set(t.Context(), true, msg, "ada")
		require.ErrorIs(t, err, ErrInvalid, "message %q", msg)
	}
	_, err := sw.Set(t.Context(), true, strings.Repeat("é", MaxMessage), "ada")
	require.NoError(t, err, "exactly the limit, counted in characters")

	st.fail = errors.New("database down")
	_, err = sw.Set(t.Context(), false, "", "ada")
	require.ErrorContains(t, err, "database down")
	_, off := sw.Offline()
	assert.True(t, off, "a failed write leaves the switch where it was")
	require.Error(t, New(st).Load(t.Context()))

	bad := &memStore{values: map[string]string{Key: "{not json"}}
	require.ErrorContains(t, New(bad).Load(t.Context()), "not JSON")
	empty := &memStore{values: map[string]string{Key: `{"offline":true}`}}
	sw = New(empty)
	require.NoError(t, sw.Load(t.Context()))
	msg, off := sw.Offline()
	assert.True(t, off)
	assert.Equal(t, DefaultMessage, msg)
}
