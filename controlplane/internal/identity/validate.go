package identity

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

// Limits on what users and keys may be called.
const (
	maxUsernameLen = 64
	maxEmailLen    = 255
	maxFullNameLen = 255
	maxKeyNameLen  = 100
	minPasswordLen = 8
	maxPasswordLen = 1024
)

// validateUsername accepts 1 to 64 letters, digits and . _ - @.
func validateUsername(u string) error {
	if u == "" || len(u) > maxUsernameLen {
		return fmt.Errorf("username must be 1 to %d characters", maxUsernameLen)
	}
	for _, c := range u {
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && !strings.ContainsRune("._-@", c) {
			return fmt.Errorf("username may contain only letters, digits and . _ - @")
		}
	}
	return nil
}

func validateEmail(e string) error {
	at := strings.IndexByte(e, '@')
	if len(e) > maxEmailLen || at < 1 || at == len(e)-1 || strings.ContainsAny(e, " \t\r\n") {
		return fmt.Errorf("email must look like name@domain and be at most %d characters", maxEmailLen)
	}
	return nil
}

func validatePassword(pw string) error {
	if utf8.RuneCountInString(pw) < minPasswordLen || len(pw) > maxPasswordLen {
		return fmt.Errorf("password must be at least %d characters (and at most %d bytes)", minPasswordLen, maxPasswordLen)
	}
	return nil
}

func validateFullName(n string) error {
	if len(n) > maxFullNameLen || !utf8.ValidString(n) {
		return fmt.Errorf("full_name must be valid UTF-8 of at most %d bytes", maxFullNameLen)
	}
	return nil
}

// Limits of the profile fields, in bytes.
const (
	maxProfileFieldLen = 255
	maxIntendedUseLen  = 2000
)

// validateProfile checks the optional profile fields; nil ones are not checked.
func validateProfile(college, department, intendedUse *string) error {
	for _, f := range []struct {
		name string
		v    *string
		max  int
	}{{"college", college, maxProfileFieldLen}, {"department", department, maxProfileFieldLen}, {"intended_use", intendedUse, maxIntendedUseLen}} {
		if f.v != nil && (len(*f.v) > f.max || !utf8.ValidString(*f.v)) {
			return fmt.Errorf("%s must be valid UTF-8 of at most %d bytes", f.name, f.max)
		}
	}
	return nil
}

func validateKeyName(n string) error {
	if strings.TrimSpace(n) == "" || len(n) > maxKeyNameLen || !utf8.ValidString(n) {
		return fmt.Errorf("name must be 1 to %d characters", maxKeyNameLen)
	}
	return nil
}

// normalizeScopes checks scopes and removes duplicates, keeping the order.
func normalizeScopes(scopes []string) ([]string, error) {
	var out []string
	for _, sc := range scopes {
		if sc != ScopeInference && sc != ScopeAdmin {
			return nil, fmt.Errorf("unknown scope %q (want %q or %q)", sc, ScopeInference, ScopeAdmin)
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	return out, nil
}

// validateRPMLimit accepts a missing or non-negative requests-per-minute limit.
func validateRPMLimit(rpm *int) error {
	if rpm != nil && *rpm < 0 {
		return fmt.Errorf("rpm_limit must not be negative (0 means unlimited)")
	}
	return nil
}

// validateWeight accepts a missing or positive scheduler weight.
func validateWeight(w *int) error {
	if w != nil && *w < 1 {
		return fmt.Errorf("weight_override must be at least 1")
	}
	return nil
}

// validateTokenBudget accepts a missing or non-negative token budget.
func validateTokenBudget(b *int64) error {
	if b != nil && *b < 0 {
		return fmt.Errorf("token_budget must not be negative (0 means unlimited)")
	}
	return nil
}

func validateExpiry(expiresAt *time.Time, now time.Time) error {
	if expiresAt != nil && !expiresAt.After(now) {
		return fmt.Errorf("expires_at must be in the future")
	}
	return nil
}

// validateServiceName accepts no service name, or one of 1 to 100 characters for
// a key without an expiry (service keys never expire).
func validateServiceName(name string, expiresAt *time.Time) error {
	switch {
	case name == "":
		return nil
	case len(name) > maxKeyNameLen || !utf8.ValidString(name):
		return fmt.Errorf("service_name must be at most %d characters", maxKeyNameLen)
	case expiresAt != nil:
		return fmt.Errorf("service keys never expire: leave expires_at out")
	}
	return nil
}

// groupExpiry is the expiry of a personal key made or renewed now: the group's
// key lifetime from now, or none when the group sets none.
func groupExpiry(g store.Group, now time.Time) *time.Time {
	if g.APIKeyExpiryDays <= 0 {
		return nil
	}
	exp := now.Add(time.Duration(g.APIKeyExpiryDays) * 24 * time.Hour)
	return &exp
}
