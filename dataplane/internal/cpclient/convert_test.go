package cpclient_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// TestEnumsAgree: the relay's enumerations are numbered like the protocol's,
// so that cpclient converts by value; every protocol value must mean the
// same in the relay, and the relay must have no value the protocol lacks.
func TestEnumsAgree(t *testing.T) {
	t.Parallel()
	check := func(prefix string, names map[int32]string, relayName func(int32) fmt.Stringer) {
		for v, name := range names {
			want := strings.ToLower(strings.TrimPrefix(name, prefix))
			assert.Equal(t, want, relayName(v).String(), "%s", name)
		}
		assert.Equal(t, fmt.Sprint(len(names)), relayName(int32(len(names))).String(),
			"%s: the relay has no value past the protocol's last", prefix)
	}
	check("ENGINE_", controlplanev1.Engine_name, func(v int32) fmt.Stringer { return relay.Engine(v) })
	check("OPERATION_", controlplanev1.Operation_name, func(v int32) fmt.Stringer { return relay.Operation(v) })
	check("CAPABILITY_", controlplanev1.Capability_name, func(v int32) fmt.Stringer { return relay.Capability(v) })
	check("OUTCOME_", controlplanev1.Outcome_name, func(v int32) fmt.Stringer { return relay.Outcome(v) })
	check("REASON_", controlplanev1.Reason_name, func(v int32) fmt.Stringer { return relay.Reason(v) })
}
