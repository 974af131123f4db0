package cpclient

import (
	"context"
	"errors"
	"io"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// AdmitWatch is Admit over the AdmitStream RPC: queued hears the request's
// position and estimated wait while it waits, as relay.QueueUpdates (on the
// caller's goroutine, before AdmitWatch returns). Errors, timeouts and
// cancellation are Admit's. Against a control plane without AdmitStream it
// falls back to Admit, and remembers that.
func (c *Client) AdmitWatch(ctx context.Context, req relay.AdmitRequest, queued func(relay.QueueUpdate)) (relay.Grant, error) {
	if c.unaryOnly.Load() {
		return c.Admit(ctx, req)
	}
	resp, err := c.admit(ctx, req, c.admitCall(queued))
	var e *Error
	if errors.As(err, &e) && e.Code == codes.Unimplemented {
		c.unaryOnly.Store(true)
		c.log.Info("control plane has no AdmitStream; admitting without queue updates")
		return c.Admit(ctx, req)
	}
	return resp, err
}

// admitStream reads an AdmitStream up to its grant.
func (c *Client) admitStream(ctx context.Context, req *controlplanev1.AdmitRequest, queued func(relay.QueueUpdate)) (*controlplanev1.AdmitResponse, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := c.admission.AdmitStream(ctx, &controlplanev1.AdmitStreamRequest{Request: req})
	if err != nil {
		return nil, err
	}
	for {
		msg, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return nil, status.Error(codes.Internal, "admit stream ended without a lease")
		}
		if err != nil {
			return nil, err
		}
		if a := msg.GetAdmitted(); a != nil {
			return a, nil
		}
		if q := msg.GetQueued(); q != nil && queued != nil {
			queued(queueUpdateOf(q))
		}
	}
}
