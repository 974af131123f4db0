package store

import (
	"testing"
	"time"
)

// FuzzSearchCursor: any cursor a client sends decodes or is refused without a
// panic, and a decoded one encodes back to the same page position.
func FuzzSearchCursor(f *testing.F) {
	f.Add(encodeSearchCursor(searchCursor{at: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC), id: 42}))
	f.Add("")
	f.Add("MTIz")
	f.Add("LTEuNQ")
	f.Add("!!")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := decodeSearchCursor(s)
		if err != nil || s == "" {
			return
		}
		back, err := decodeSearchCursor(encodeSearchCursor(c))
		if err != nil || !back.at.Equal(c.at) || back.id != c.id || c.id <= 0 {
			t.Fatalf("%q: %+v round-trips to %+v, %v", s, c, back, err)
		}
	})
}
