package errinfo

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestKnownStatus(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		err   error
		known bool
		code  codes.Code
		msg   string
	}{
		{status.Error(codes.NotFound, "no such backend"), true, codes.NotFound, "no such backend"},
		{fmt.Errorf("admit: %w", context.Canceled), true, codes.Canceled, "request cancelled"},
		{fmt.Errorf("store: %w", context.DeadlineExceeded), true, codes.DeadlineExceeded, "deadline exceeded"},
		{errors.New("disk on fire"), false, codes.OK, ""},
	} {
		st, ok := KnownStatus(c.err)
		if ok != c.known {
			t.Fatalf("%v: known %v, want %v", c.err, ok, c.known)
		}
		if ok && (st.Code() != c.code || st.Message() != c.msg) {
			t.Errorf("%v: got %v %q, want %v %q", c.err, st.Code(), st.Message(), c.code, c.msg)
		}
	}
}
