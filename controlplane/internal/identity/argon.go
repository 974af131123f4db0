package identity

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// argonParams are the cost parameters of an Argon2id hash.
type argonParams struct {
	time    uint32
	memory  uint32 // KiB
	threads uint8
	keyLen  uint32
	saltLen int
}

var (
	// keyParams hash API keys: high-entropy secrets, verified once per cache miss.
	keyParams = argonParams{time: 2, memory: 64 * 1024, threads: 1, keyLen: 32, saltLen: 16}
	// passwordParams hash passwords, as the original system did.
	passwordParams = argonParams{time: 3, memory: 64 * 1024, threads: 4, keyLen: 32, saltLen: 16}
)

// Bounds on parameters read back from a stored hash, so that a corrupt or hostile
// row cannot make one verification take gigabytes or minutes.
const (
	maxArgonMemoryKiB = 1 << 20 // 1 GiB
	maxArgonTime      = 16
	maxArgonSaltLen   = 64
	maxArgonKeyLen    = 128
)

var errBadPHC = errors.New("malformed Argon2id hash")

// hashArgon2id returns the PHC string of secret under p with a random salt.
func hashArgon2id(secret string, p argonParams) (string, error) {
	salt := make([]byte, p.saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("argon2id salt: %w", err)
	}
	sum := argon2.IDKey([]byte(secret), salt, p.time, p.memory, p.threads, p.keyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.memory, p.time, p.threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(sum)), nil
}

// phc is a parsed Argon2id PHC string.
type phc struct {
	params argonParams
	salt   []byte
	sum    []byte
}

// parsePHC parses "$argon2id$v=19$m=65536,t=2,p=1$<salt>$<hash>" (unpadded
// standard base64, as the reference implementations write it).
func parsePHC(s string) (phc, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return phc{}, errBadPHC
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return phc{}, fmt.Errorf("%w: unsupported version %q", errBadPHC, parts[2])
	}
	var p phc
	var seen [3]bool
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return phc{}, errBadPHC
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return phc{}, fmt.Errorf("%w: parameter %q", errBadPHC, k)
		}
		switch k {
		case "m":
			p.params.memory, seen[0] = uint32(n), true
		case "t":
			p.params.time, seen[1] = uint32(n), true
		case "p":
			if n > 255 {
				return phc{}, fmt.Errorf("%w: parallelism %d", errBadPHC, n)
			}
			p.params.threads, seen[2] = uint8(n), true
		default:
			return phc{}, fmt.Errorf("%w: unknown parameter %q", errBadPHC, k)
		}
	}
	if seen != [3]bool{true, true, true} {
		return phc{}, fmt.Errorf("%w: missing parameter", errBadPHC)
	}
	if p.params.time < 1 || p.params.time > maxArgonTime || p.params.threads < 1 ||
		p.params.memory < 8*uint32(p.params.threads) || p.params.memory > maxArgonMemoryKiB {
		return phc{}, fmt.Errorf("%w: parameters out of range", errBadPHC)
	}
	var err error
	if p.salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil || len(p.salt) < 8 || len(p.salt) > maxArgonSaltLen {
		return phc{}, fmt.Errorf("%w: salt", errBadPHC)
	}
	if p.sum, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil || len(p.sum) < 16 || len(p.sum) > maxArgonKeyLen {
		return phc{}, fmt.Errorf("%w: hash", errBadPHC)
	}
	p.params.keyLen = uint32(len(p.sum))
	p.params.saltLen = len(p.salt)
	return p, nil
}

// verifyArgon2id reports whether secret matches the PHC string encoded, comparing
// in constant time.
func verifyArgon2id(encoded, secret string) (bool, error) {
	p, err := parsePHC(encoded)
	if err != nil {
		return false, err
	}
	sum := argon2.IDKey([]byte(secret), p.salt, p.params.time, p.params.memory, p.params.threads, p.params.keyLen)
	return subtle.ConstantTimeCompare(sum, p.sum) == 1, nil
}

// HashPassword returns the Argon2id PHC string of a password (t=3, m=64 MiB, p=4,
// 32-byte hash, 16-byte salt).
func HashPassword(pw string) (string, error) {
	h, err := hashArgon2id(pw, passwordParams)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return h, nil
}

// CheckPassword reports whether pw matches hash. A malformed hash never matches.
func CheckPassword(hash, pw string) bool {
	ok, err := verifyArgon2id(hash, pw)
	return err == nil && ok
}
