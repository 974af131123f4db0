package refusal

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestNewReadsAsItsMessageAndMatchesItsSentinel(t *testing.T) {
	errBad := errors.New("bad")
	err := fmt.Errorf("wrapped: %w", New(errBad, "id must be positive"))
	assert.ErrorIs(t, err, errBad)
	assert.NotErrorIs(t, err, errors.New("bad"), "another error with the same text is not the sentinel")
	assert.EqualError(t, errors.Unwrap(err), "id must be positive")
}
