package store_test

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

// faultProxy forwards TCP connections to a real server and can freeze them (bytes
// stop flowing both ways, as with a stopped database process) or cut them and
// refuse new ones (a dead database).
type faultProxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	frozen chan struct{} // closed while traffic flows
	down   bool
	conns  []net.Conn
}

func newFaultProxy(t *testing.T, target string) *faultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &faultProxy{ln: ln, target: target, frozen: make(chan struct{})}
	close(p.frozen)
	go p.serve()
	t.Cleanup(func() { p.thaw(); p.cut(); _ = ln.Close() })
	return p
}

func (p *faultProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

func (p *faultProxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			gate := p.frozen
			p.mu.Unlock()
			<-gate
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			_ = dst.Close()
			return
		}
	}
}

func (p *faultProxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.frozen = make(chan struct{})
}

func (p *faultProxy) thaw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.frozen:
	default:
		close(p.frozen)
	}
}

// cut closes every connection and refuses new ones until restore.
func (p *faultProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

func (p *faultProxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

// openProxiedMariaStore opens a store on a new MariaDB database reached through
// a fault proxy.
func openProxiedMariaStore(t *testing.T, timeout time.Duration) (*store.Store, *faultProxy) {
	t.Helper()
	cfg, err := mysql.ParseDSN(newMariaDatabase(t))
	require.NoError(t, err)
	p := newFaultProxy(t, cfg.Addr)
	cfg.Addr = p.ln.Addr().String()
	s, err := store.Open(ctxT(t), store.Config{Driver: "mysql", DSN: cfg.FormatDSN(), Timeout: timeout}, testLogger(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s, p
}

// assertUnavailable checks that err is ErrUnavailable with a Retry-After.
func assertUnavailable(t *testing.T, err error) {
	t.Helper()
	require.ErrorIs(t, err, store.ErrUnavailable)
	var ra interface{ RetryAfter() time.Duration }
	require.ErrorAs(t, err, &ra)
	assert.Positive(t, ra.RetryAfter())
	assert.NotErrorIs(t, err, context.DeadlineExceeded, "the store's deadline is not the caller's")
}

func TestStoreDeadlineFrozenDatabase(t *testing.T) {
	const timeout = 500 * time.Millisecond
	s, p := openProxiedMariaStore(t, timeout)
	ctx := ctxT(t)
	u := seedUser(t, s, "frozen", store.GroupStaff)

	p.freeze()
	calls := map[string]func() error{
		"query": func() error { _, err := s.GetUser(ctx, u.ID); return err },
		"exec": func() error {
			name := "Renamed"
			_, err := s.UpdateUser(ctx, u.ID, store.UserPatch{FullName: &name})
			return err
		},
		"transaction": func() error {
			return s.UpsertQuotaUsage(ctx, []store.QuotaUsage{{UserID: u.ID, TokensUsed: 1, LifetimeTokensUsed: 1, PeriodStart: time.Now()}})
		},
		"ping": func() error { return s.Ping(ctx) },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			err := call()
			took := time.Since(start)
			assertUnavailable(t, err)
			assert.Less(t, took, 4*timeout, "a frozen database holds a call no longer than the store's deadline")
		})
	}

	t.Run("the caller's own cancellation stays a cancellation", func(t *testing.T) {
		cctx, cancel := context.WithTimeout(ctx, timeout/5)
		defer cancel()
		_, err := s.GetUser(cctx, u.ID)
		require.Error(t, err)
		assert.NotErrorIs(t, err, store.ErrUnavailable)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
	})

	p.thaw()
	require.Eventually(t, func() bool { _, err := s.GetUser(ctx, u.ID); return err == nil },
		10*time.Second, 50*time.Millisecond, "the store recovers when the database answers again")
}

func TestStoreDeadlineDeadDatabase(t *testing.T) {
	s, p := openProxiedMariaStore(t, 2*time.Second)
	ctx := ctxT(t)
	u := seedUser(t, s, "dead", store.GroupStaff)

	p.cut()
	for range 3 { // broken pooled connections first, then refused new ones
		_, err := s.GetUser(ctx, u.ID)
		assertUnavailable(t, err)
	}
	_, err := s.CreateUser(ctx, store.UserSpec{Username: "new", Email: "new@example.edu", GroupID: u.GroupID})
	assertUnavailable(t, err)

	p.restore()
	require.Eventually(t, func() bool { _, err := s.GetUser(ctx, u.ID); return err == nil },
		10*time.Second, 50*time.Millisecond)
}

func TestUnreachable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, true},
		{mysql.ErrInvalidConn, true},
		{io.ErrUnexpectedEOF, true},
		{&mysql.MySQLError{Number: 1040, Message: "Too many connections"}, true},
		{&mysql.MySQLError{Number: 1062, Message: "Duplicate entry"}, false},
		{store.ErrNotFound, false},
		{errors.New("syntax error"), false},
	} {
		assert.Equal(t, tc.want, store.Unreachable(tc.err), "%v", tc.err)
	}
}
