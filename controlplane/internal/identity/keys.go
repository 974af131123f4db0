package identity

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
)

// KeyPrefix starts every API key.
const KeyPrefix = "mr2_"

const (
	keySecretBytes = 32
	// KeyLength is the length of a well-formed key: the prefix and 43 base64url
	// characters.
	KeyLength = len(KeyPrefix) + (keySecretBytes*8+5)/6
	// displayPrefixLength is "mr2_" and the first 8 characters of the secret.
	displayPrefixLength = len(KeyPrefix) + 8
)

// NewKey returns a fresh random key.
func NewKey() (string, error) {
	var b [keySecretBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("new API key: %w", err)
	}
	return KeyPrefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// WellFormedKey reports whether s has the shape of a key: the prefix, then exactly
// 43 base64url characters whose unused trailing bits are zero. It reads nothing
// but s.
func WellFormedKey(s string) bool {
	if len(s) != KeyLength || s[:len(KeyPrefix)] != KeyPrefix {
		return false
	}
	for i := len(KeyPrefix); i < len(s); i++ {
		if !isBase64URL(s[i]) {
			return false
		}
	}
	// 43 characters carry 258 bits; the last character's low 2 bits must be zero
	// for the key to be the canonical encoding of 32 bytes.
	return base64URLValue(s[len(s)-1])&0x3 == 0
}

func isBase64URL(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

func base64URLValue(c byte) byte {
	switch {
	case c >= 'A' && c <= 'Z':
		return c - 'A'
	case c >= 'a' && c <= 'z':
		return c - 'a' + 26
	case c >= '0' && c <= '9':
		return c - '0' + 52
	case c == '-':
		return 62
	}
	return 63
}

// DisplayPrefix returns the part of a key that may be shown and logged: "mr2_" and
// the first 8 characters of the secret.
func DisplayPrefix(key string) string {
	if len(key) < displayPrefixLength {
		return key
	}
	return key[:displayPrefixLength]
}

// KeyDigest returns the hex SHA-256 digest of a key, as stored.
func KeyDigest(key string) string {
	d := digestOf(key)
	return hex.EncodeToString(d[:])
}

// digestOf hashes a key without allocating for keys of the standard length.
func digestOf(key string) [sha256.Size]byte {
	var buf [KeyLength]byte
	if len(key) == KeyLength {
		copy(buf[:], key)
		return sha256.Sum256(buf[:])
	}
	return sha256.Sum256([]byte(key))
}
