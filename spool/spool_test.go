package spool

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestSpoolSurvivesRestartAndDropsTornWrites: a reopened spool finds the
// batches a previous run wrote, oldest first, refuses past its bound, and
// removes a torn temporary file.
func TestSpoolSurvivesRestartAndDropsTornWrites(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := Open(dir, 100)
	must(t, err)
	must(t, s.Append([]byte("one")))
	must(t, s.Append([]byte("two")))
	if err := s.Append(make([]byte, 95)); !errors.Is(err, ErrFull) {
		t.Fatalf("a batch past the bound: %v, want ErrFull", err)
	}
	if !s.Full() {
		t.Fatal("Full after a refusal")
	}
	torn := filepath.Join(dir, "00000000000000000003.batch.tmp")
	must(t, os.WriteFile(torn, []byte("torn"), 0o600))

	s2, err := Open(dir, 100)
	must(t, err)
	if n, size := s2.Len(); n != 2 || size != 6 {
		t.Fatalf("reopened: %d batches, %d bytes; want 2, 6", n, size)
	}
	seq, data, ok, err := s2.Head()
	must(t, err)
	if !ok || string(data) != "one" {
		t.Fatalf("head %q (ok %v), want one", data, ok)
	}
	must(t, s2.Remove(seq))
	must(t, s2.Append([]byte("three")))
	if _, data, _, _ = s2.Head(); string(data) != "two" {
		t.Fatalf("head %q after removal, want two", data)
	}
	if _, err := os.Stat(torn); !os.IsNotExist(err) {
		t.Fatalf("torn file left: %v", err)
	}
}

func TestFullClearsWhenARemovalMakesRoom(t *testing.T) {
	t.Parallel()
	s, err := Open(t.TempDir(), 4)
	must(t, err)
	must(t, s.Append([]byte("abcd")))
	if err := s.Append([]byte("e")); !errors.Is(err, ErrFull) {
		t.Fatalf("over the bound: %v", err)
	}
	seq, _, _, err := s.Head()
	must(t, err)
	must(t, s.Remove(seq))
	if s.Full() {
		t.Fatal("still full after a removal")
	}
	must(t, s.Append([]byte("e")))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
