// Package refusal builds the control plane's refusals that read as their own
// message and map, through the server's one error table, like a sentinel.
package refusal

// New returns an error whose text is msg and which errors.Is reports as
// sentinel: "id must be a positive integer" refused as the package's
// ErrInvalidArgument, say.
func New(sentinel error, msg string) error { return &refusal{sentinel: sentinel, msg: msg} }

type refusal struct {
	sentinel error
	msg      string
}

func (r *refusal) Error() string        { return r.msg }
func (r *refusal) Is(target error) bool { return target == r.sentinel }
