package quota

// Account is whom a reservation is counted against: a user, the API key the
// request came with, and their limits as the identity store has them now.
type Account struct {
	UserID int64
	// APIKeyID is 0 when the request carried no key of its own.
	APIKeyID int64
	// RPMLimit is the user's requests per minute, 0 for unlimited; KeyRPMLimit is
	// the key's own limit, counted in a window of its own, 0 when the key has none.
	RPMLimit    int
	KeyRPMLimit int
	// TokenBudget is tokens per budget period, 0 for unlimited.
	TokenBudget int64
}

// Reservation is the quota one request holds while it is admitted.
type Reservation struct {
	// RequestID identifies the client request; its retry attempts share it.
	RequestID string
	// Tokens is the prompt estimate plus the output allowance.
	Tokens int64
}

// Settlement ends a reservation and reports what the request used.
type Settlement struct {
	Reservation
	// Granted is false when the request never got a slot: nothing is charged.
	Granted bool
	// Succeeded is true when the request completed; a success that reported no
	// usage is charged its reservation.
	Succeeded bool
	// PromptTokens and CompletionTokens are the reported usage.
	PromptTokens     int64
	CompletionTokens int64
	// Lost is true when the lease expired or its replica vanished: the usage is
	// unknown and the reservation is charged.
	Lost bool
	// Adopted is true when this process never reserved anything for the request
	// (a lease adopted after a restart): nothing is released, the usage is
	// charged once.
	Adopted bool
}
