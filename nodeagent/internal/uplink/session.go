package uplink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/durationpb"

	nodeagentv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/nodeagent/v1"
)

// errStreamClosed is returned when the control plane ends a stream without a status.
var errStreamClosed = errors.New("control plane closed the stream")

// session runs one stream: Hello, wait for Welcome, then send samples as they arrive in
// the mailbox until the stream fails or ctx ends. welcomedAt is when the control plane
// accepted the stream, zero if it did not.
func (u *Uplink) session(ctx context.Context) (welcomedAt time.Time, err error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sctx = metadata.AppendToOutgoingContext(sctx,
		NodeHeader, u.cfg.NodeName,
		AuthHeader, "Bearer "+u.cfg.Secret)

	stream, err := u.client.Stream(sctx)
	if err != nil {
		return time.Time{}, fmt.Errorf("open stream: %w", err)
	}
	hello := &nodeagentv1.StreamRequest{Kind: &nodeagentv1.StreamRequest_Hello{Hello: &nodeagentv1.Hello{
		NodeName:     u.cfg.NodeName,
		AgentVersion: u.cfg.AgentVersion,
		Hostname:     u.cfg.Hostname,
	}}}
	if err := stream.Send(hello); err != nil {
		if errors.Is(err, io.EOF) { // the status is only available from Recv
			_, err = stream.Recv()
		}
		return time.Time{}, fmt.Errorf("send hello: %w", err)
	}
	resp, err := stream.Recv()
	if err != nil {
		return time.Time{}, fmt.Errorf("await welcome: %w", eofToClosed(err))
	}
	w := resp.GetWelcome()
	if w == nil {
		return time.Time{}, errors.New("await welcome: first response is not a welcome")
	}
	welcomedAt = time.Now()
	u.applyInterval(w.GetSampleInterval())
	u.connects.Add(1)
	u.connected.Store(true)
	defer u.connected.Store(false)
	u.log.Info("telemetry stream open", "node_id", w.GetNodeId(),
		"interval", time.Duration(u.interval.Load()))
	if u.box.empty() {
		u.sampleNow()
	}

	recvErr := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Go(func() { recvErr <- u.receive(stream) })
	defer wg.Wait() // after cancel (deferred earlier, runs later) ends Recv
	defer cancel()

	for {
		select {
		case <-ctx.Done():
			return welcomedAt, nil
		case err := <-recvErr:
			return welcomedAt, fmt.Errorf("receive: %w", eofToClosed(err))
		case <-u.box.ready:
			s := u.box.take()
			if s == nil {
				continue
			}
			req := &nodeagentv1.StreamRequest{Kind: &nodeagentv1.StreamRequest_Sample{Sample: s}}
			if err := stream.Send(req); err != nil {
				u.box.restore(s)
				if errors.Is(err, io.EOF) {
					err = eofToClosed(<-recvErr)
				}
				return welcomedAt, fmt.Errorf("send sample: %w", err)
			}
			u.sent.Add(1)
		}
	}
}

// receive reads Acks and later Welcomes until the stream ends.
func (u *Uplink) receive(stream nodeagentv1.TelemetryService_StreamClient) error {
	for {
		resp, err := stream.Recv()
		if err != nil {
			return err
		}
		switch k := resp.GetKind().(type) {
		case *nodeagentv1.StreamResponse_Ack:
			u.acked.Add(1)
		case *nodeagentv1.StreamResponse_Welcome:
			u.applyInterval(k.Welcome.GetSampleInterval())
		}
	}
}

// applyInterval sets the sampling interval from a Welcome: unset or non-positive keeps
// the local default, anything else is floored at MinInterval.
func (u *Uplink) applyInterval(d *durationpb.Duration) {
	want := u.cfg.Interval
	if d != nil && d.AsDuration() > 0 {
		want = max(d.AsDuration(), u.cfg.MinInterval)
	}
	if old := time.Duration(u.interval.Swap(int64(want))); old != want {
		select {
		case u.intervalC <- struct{}{}:
		default:
		}
	}
}

func (u *Uplink) sampleNow() {
	select {
	case u.kick <- struct{}{}:
	default:
	}
}

func eofToClosed(err error) error {
	if errors.Is(err, io.EOF) {
		return errStreamClosed
	}
	return err
}
