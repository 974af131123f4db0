package telemetry

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func hexDigest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestSecretMatches(t *testing.T) {
	t.Parallel()
	d := hexDigest("secret-1")
	tests := []struct {
		name   string
		secret string
		digest string
		want   bool
	}{
		{"match", "secret-1", d, true},
		{"upper-case digest", "secret-1", strings.ToUpper(d), true},
		{"wrong secret", "secret-2", d, false},
		{"no digest", "secret-1", "", false},
		{"empty secret against empty digest", "", "", false},
		{"malformed digest", "secret-1", "zz" + d[2:], false},
		{"short digest", "secret-1", d[:32], false},
		{"all-zero digest", "secret-1", strings.Repeat("0", 64), false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, secretMatches(tt.secret, tt.digest), tt.name)
	}
}

func TestParseBearer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		tok  string
		want bool
	}{
		{"Bearer abc", "abc", true},
		{"bearer abc", "abc", true},
		{"BEARER  abc ", "abc", true},
		{"Bearer ", "", false},
		{"Bearer", "", false},
		{"Basic abc", "", false},
		{"abc", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		tok, ok := parseBearer(tt.in)
		assert.Equal(t, tt.want, ok, "%q", tt.in)
		assert.Equal(t, tt.tok, tok, "%q", tt.in)
	}
}

func FuzzParseBearer(f *testing.F) {
	f.Add("Bearer abc")
	f.Add("bearer ")
	f.Fuzz(func(t *testing.T, v string) {
		tok, ok := parseBearer(v)
		if ok != (tok != "") {
			t.Fatalf("parseBearer(%q) = %q, %v", v, tok, ok)
		}
		if ok && !strings.Contains(v, tok) {
			t.Fatalf("token %q not taken from %q", tok, v)
		}
	})
}

func FuzzSecretMatches(f *testing.F) {
	f.Add("secret-1", hexDigest("secret-1"))
	f.Add("x", "")
	f.Fuzz(func(t *testing.T, secret, digest string) {
		if secretMatches(secret, digest) && !strings.EqualFold(digest, hexDigest(secret)) {
			t.Fatalf("secret %q matched digest %q", secret, digest)
		}
		if !secretMatches(secret, hexDigest(secret)) {
			t.Fatalf("secret %q does not match its own digest", secret)
		}
	})
}
