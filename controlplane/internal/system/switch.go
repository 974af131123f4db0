package system

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/mindrouter/mindrouter/controlplane/internal/refusal"
)

// Key is the settings key the switch is stored under.
const Key = "system.status"

// MaxMessage bounds the maintenance message, in characters.
const MaxMessage = 500

// DefaultMessage is what clients are told when the administrator gave no
// message (only possible through the store; the API requires one).
const DefaultMessage = "The service is offline for maintenance."

// ErrInvalid refuses a switch without a message or with one too long.
var ErrInvalid = errors.New("invalid system status")

// State is the switch's position.
type State struct {
	Offline bool   `json:"offline"`
	Message string `json:"message,omitempty"`
	// ChangedBy names the administrator who last moved the switch; ChangedAt
	// is when (zero if never).
	ChangedBy string    `json:"changed_by,omitempty"`
	ChangedAt time.Time `json:"changed_at,omitzero"`
}

// Store keeps settings; *store.Store implements it.
type Store interface {
	Setting(ctx context.Context, key string) (value string, updated time.Time, ok bool, err error)
	PutSetting(ctx context.Context, key, value string) error
	// AfterCommit runs fn once the writes made with ctx have committed, and
	// never if they roll back.
	AfterCommit(ctx context.Context, fn func())
}

// Switch is the on/off switch: the stored position and its copy in memory.
type Switch struct {
	st    Store
	state atomic.Pointer[State]
	now   func() time.Time
	// follow serialises the copies that follow commits (follow), so that the
	// last one to run, which reads after every commit, leaves the latest.
	follow sync.Mutex
}

// New returns a switch that is online until Load reads the stored position.
func New(st Store) *Switch {
	s := &Switch{st: st, now: time.Now}
	s.state.Store(&State{})
	return s
}

// Load reads the stored position (at start, before admission serves).
func (s *Switch) Load(ctx context.Context) error {
	v, _, ok, err := s.st.Setting(ctx, Key)
	if err != nil {
		return fmt.Errorf("load system status: %w", err)
	}
	if !ok {
		return nil
	}
	var st State
	if err := json.Unmarshal([]byte(v), &st); err != nil {
		return fmt.Errorf("load system status: stored value is not JSON: %w", err)
	}
	s.state.Store(&st)
	return nil
}

// State returns the switch's position.
func (s *Switch) State() State { return *s.state.Load() }

// Offline reports whether the service is offline and, if so, what clients are
// told. It is admission's check: one atomic load.
func (s *Switch) Offline() (message string, offline bool) {
	st := s.state.Load()
	if !st.Offline {
		return "", false
	}
	if st.Message == "" {
		return DefaultMessage, true
	}
	return st.Message, true
}

// Set moves the switch: offline with a message (required), or online. by names
// the administrator. The position is stored first; memory follows only once
// it has committed (in an audited call, the change and its admin-action record
// commit together, after Set returns), never when it rolls back.
func (s *Switch) Set(ctx context.Context, offline bool, message, by string) (State, error) {
	message = strings.TrimSpace(message)
	if !offline {
		message = ""
	}
	switch {
	case offline && message == "":
		return State{}, refusal.New(ErrInvalid, "a message is required to take the system offline")
	case utf8.RuneCountInString(message) > MaxMessage:
		return State{}, refusal.New(ErrInvalid, fmt.Sprintf("the message must be at most %d characters", MaxMessage))
	case !utf8.ValidString(message):
		return State{}, refusal.New(ErrInvalid, "the message must be UTF-8")
	}
	st := State{Offline: offline, Message: message, ChangedBy: by, ChangedAt: s.now().UTC()}
	b, err := json.Marshal(st)
	if err != nil {
		return State{}, fmt.Errorf("encode system status: %w", err)
	}
	if err := s.st.PutSetting(ctx, Key, string(b)); err != nil {
		return State{}, fmt.Errorf("store system status: %w", err)
	}
	s.st.AfterCommit(ctx, func() { s.followCommit(ctx, st) })
	return st, nil
}

// followCommit updates memory after a committed Set. Toggles made at once
// commit in the database's order, which need not be the order their hooks
// run in, so memory takes the stored position read after the commit rather
// than the one this call wrote; the lock makes the last hook's read also the
// last store. If the read fails, this call's own position is the best known.
func (s *Switch) followCommit(ctx context.Context, mine State) {
	s.follow.Lock()
	defer s.follow.Unlock()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), followTimeout)
	defer cancel()
	st := mine
	if v, _, ok, err := s.st.Setting(ctx, Key); err == nil && ok {
		var stored State
		if json.Unmarshal([]byte(v), &stored) == nil {
			st = stored
		}
	}
	s.state.Store(&st)
}

// followTimeout bounds followCommit's read.
const followTimeout = 5 * time.Second
