package identity

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewKeyIsWellFormed(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 100 {
		k, err := NewKey()
		require.NoError(t, err)
		require.Len(t, k, 47)
		require.True(t, strings.HasPrefix(k, "mr2_"))
		require.True(t, WellFormedKey(k), k)
		require.False(t, seen[k])
		seen[k] = true
		assert.Equal(t, k[:12], DisplayPrefix(k))
		assert.Len(t, KeyDigest(k), 64)
	}
}

func TestWellFormedKey(t *testing.T) {
	t.Parallel()
	good := "mr2_" + strings.Repeat("A", 42) + "E" // E = 4: low two bits zero
	tests := []struct {
		name string
		key  string
		want bool
	}{
		{"canonical", good, true},
		{"empty", "", false},
		{"prefix only", "mr2_", false},
		{"old prefix", "mr1_" + good[4:], false},
		{"bearer left in", "Bearer " + good, false},
		{"one short", good[:46], false},
		{"one long", good + "A", false},
		{"padding", good[:46] + "=", false},
		{"standard base64 plus", "mr2_" + strings.Repeat("+", 42) + "A", false},
		{"non-canonical tail", good[:46] + "F", false},
		{"unicode", "mr2_" + strings.Repeat("é", 21) + "A", false},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, WellFormedKey(tc.key), tc.name)
	}
}

func TestArgon2RoundTrip(t *testing.T) {
	t.Parallel()
	// Production parameters cost seconds under the race detector: one round trip
	// each, in parallel; mismatches are checked with cheap parameters.
	t.Run("key parameters", func(t *testing.T) {
		t.Parallel()
		key, err := NewKey()
		require.NoError(t, err)
		h, err := hashArgon2id(key, keyParams)
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(h, "$argon2id$v=19$m=65536,t=2,p=1$"), h)
		ok, err := verifyArgon2id(h, key)
		require.NoError(t, err)
		require.True(t, ok)
	})
	t.Run("password parameters", func(t *testing.T) {
		t.Parallel()
		pw, err := HashPassword("correct horse battery")
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(pw, "$argon2id$v=19$m=65536,t=3,p=4$"), pw)
		p, err := parsePHC(pw)
		require.NoError(t, err)
		assert.Len(t, p.salt, 16)
		assert.Len(t, p.sum, 32)
		assert.True(t, CheckPassword(pw, "correct horse battery"))
	})
	t.Run("mismatch", func(t *testing.T) {
		t.Parallel()
		h, err := hashArgon2id("secret one", fastParams)
		require.NoError(t, err)
		ok, err := verifyArgon2id(h, "secret two")
		require.NoError(t, err)
		assert.False(t, ok)
		assert.False(t, CheckPassword(h, "secret one!"))
		assert.True(t, CheckPassword(h, "secret one"))
		assert.False(t, CheckPassword("not a hash", "x"))
	})
}

func TestParsePHCRejects(t *testing.T) {
	t.Parallel()
	const salt, sum = "c2FsdHNhbHRzYWx0c2FsdA", "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"
	tests := []string{
		"",
		"$argon2i$v=19$m=65536,t=2,p=1$" + salt + "$" + sum,
		"$argon2id$v=16$m=65536,t=2,p=1$" + salt + "$" + sum,
		"$argon2id$v=19$m=65536,t=2$" + salt + "$" + sum,
		"$argon2id$v=19$m=65536,t=2,p=1,x=3$" + salt + "$" + sum,
		"$argon2id$v=19$m=99999999,t=2,p=1$" + salt + "$" + sum,
		"$argon2id$v=19$m=65536,t=0,p=1$" + salt + "$" + sum,
		"$argon2id$v=19$m=65536,t=2,p=0$" + salt + "$" + sum,
		"$argon2id$v=19$m=65536,t=2,p=1$!!$" + sum,
		"$argon2id$v=19$m=65536,t=2,p=1$" + salt + "$c2hvcnQ",
		"$argon2id$v=19$m=65536,t=2,p=1$" + salt,
	}
	for _, s := range tests {
		_, err := parsePHC(s)
		assert.ErrorIs(t, err, errBadPHC, s)
	}
	_, err := parsePHC("$argon2id$v=19$m=65536,t=2,p=1$" + salt + "$" + sum)
	require.NoError(t, err)
}

func FuzzParsePHC(f *testing.F) {
	f.Add("$argon2id$v=19$m=65536,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g")
	f.Add("$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA")
	f.Add("$$$$$")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parsePHC(s)
		if err != nil {
			return
		}
		if p.params.memory > maxArgonMemoryKiB || p.params.time > maxArgonTime || p.params.threads == 0 ||
			len(p.salt) > maxArgonSaltLen || len(p.sum) > maxArgonKeyLen {
			t.Fatalf("parsePHC(%q) accepted out-of-range parameters %+v", s, p.params)
		}
	})
}

func FuzzWellFormedKey(f *testing.F) {
	f.Add("mr2_" + strings.Repeat("A", 43))
	f.Add("mr2_")
	f.Add("Bearer mr2_x")
	f.Fuzz(func(t *testing.T, s string) {
		if !WellFormedKey(s) {
			return
		}
		if len(s) != KeyLength || !strings.HasPrefix(s, KeyPrefix) {
			t.Fatalf("accepted %q", s)
		}
		if DisplayPrefix(s) != s[:12] {
			t.Fatalf("prefix of %q", s)
		}
	})
}
