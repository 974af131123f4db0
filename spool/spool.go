// Package spool keeps batches on disk, in order, while the process that takes
// them cannot: the audit trail's spool on both planes (a data plane while its
// control plane does not acknowledge, a control plane while its database is
// unreachable).
package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// ErrFull means the spool holds its maximum; the batch was not written.
var ErrFull = errors.New("spool is full")

// Spool is a directory of batches, one file each, named by a sequence number
// so that they replay in the order they were written. A file is written under
// a temporary name, synced and renamed, so that a crash leaves either the
// whole batch or nothing. It is safe for concurrent use.
type Spool struct {
	dir      string
	maxBytes int64

	mu    sync.Mutex
	next  uint64
	files []spoolFile // oldest first
	bytes int64
	// full is set when a batch was refused for want of room, and cleared when
	// a removal makes room again.
	full bool
}

type spoolFile struct {
	seq  uint64
	size int64
}

const spoolExt = ".batch"

// Open opens (creating it when missing) the spool in dir, bounded to
// maxBytes (0: unbounded), and finds the batches a previous run left.
func Open(dir string, maxBytes int64) (*Spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open spool: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("open spool: %w", err)
	}
	s := &Spool{dir: dir, maxBytes: maxBytes}
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, ".tmp") {
			_ = os.Remove(filepath.Join(dir, name)) // a write that never completed
			continue
		}
		seq, err := strconv.ParseUint(strings.TrimSuffix(name, spoolExt), 10, 64)
		if err != nil || !strings.HasSuffix(name, spoolExt) {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return nil, fmt.Errorf("open spool: %w", err)
		}
		s.files = append(s.files, spoolFile{seq: seq, size: info.Size()})
		s.bytes += info.Size()
		s.next = max(s.next, seq)
	}
	slices.SortFunc(s.files, func(a, b spoolFile) int { return compareUint(a.seq, b.seq) })
	return s, nil
}

func compareUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (s *Spool) path(seq uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%020d%s", seq, spoolExt))
}

// Append writes one batch durably at the tail.
func (s *Spool) Append(data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.maxBytes > 0 && s.bytes+int64(len(data)) > s.maxBytes {
		s.full = true
		return ErrFull
	}
	seq := s.next + 1
	final := s.path(seq)
	tmp := final + ".tmp"
	if err := writeSynced(tmp, data); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("spool batch: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("spool batch: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		return fmt.Errorf("spool batch: %w", err)
	}
	s.next = seq
	s.files = append(s.files, spoolFile{seq: seq, size: int64(len(data))})
	s.bytes += int64(len(data))
	return nil
}

func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Head returns the oldest batch and its sequence number; ok is false when the
// spool is empty.
func (s *Spool) Head() (seq uint64, data []byte, ok bool, err error) {
	s.mu.Lock()
	if len(s.files) == 0 {
		s.mu.Unlock()
		return 0, nil, false, nil
	}
	seq = s.files[0].seq
	s.mu.Unlock()
	data, err = os.ReadFile(s.path(seq))
	if err != nil {
		return 0, nil, false, fmt.Errorf("read spooled batch %d: %w", seq, err)
	}
	return seq, data, true, nil
}

// Remove drops the oldest batch, which must be seq.
func (s *Spool) Remove(seq uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.files) == 0 || s.files[0].seq != seq {
		return fmt.Errorf("remove spooled batch %d: not the oldest", seq)
	}
	if err := os.Remove(s.path(seq)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove spooled batch %d: %w", seq, err)
	}
	s.bytes -= s.files[0].size
	s.files = s.files[1:]
	s.full = false
	return nil
}

// Full reports whether the spool refused a batch for want of room since the
// last removal.
func (s *Spool) Full() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.full
}

// Len returns the number of batches and their bytes.
func (s *Spool) Len() (int, int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.files), s.bytes
}

// MaxBytes returns the spool's limit in bytes; 0 means unbounded.
func (s *Spool) MaxBytes() int64 { return s.maxBytes }
