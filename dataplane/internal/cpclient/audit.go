package cpclient

import (
	"context"
	"fmt"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	auditv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/audit/v1"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// AuditSender sends audit batches on one AuditIngestService stream, one batch
// at a time, each answered by the control plane's acknowledgement. A stream
// that fails is dropped and the next batch opens a new one. It implements
// audit.Sender.
type AuditSender struct {
	client  controlplanev1.AuditIngestServiceClient
	token   string
	replica string

	mu     sync.Mutex
	stream grpc.BidiStreamingClient[controlplanev1.IngestRequest, controlplanev1.IngestResponse]
	cancel context.CancelFunc
	seq    uint64
}

// NewAuditSender returns a sender over conn authenticated by the cluster token.
func (c *Client) NewAuditSender(conn grpc.ClientConnInterface) *AuditSender {
	return &AuditSender{client: controlplanev1.NewAuditIngestServiceClient(conn), token: c.cfg.ClusterToken, replica: c.cfg.ReplicaID}
}

// SendAudit sends b and waits for its acknowledgement or ctx's end.
func (s *AuditSender) SendAudit(ctx context.Context, b *auditv1.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stream == nil {
		sctx, cancel := context.WithCancel(context.Background())
		st, err := s.client.Ingest(withToken(sctx, s.token))
		if err != nil {
			cancel()
			return fmt.Errorf("open audit stream: %w", err)
		}
		s.stream, s.cancel = st, cancel
	}
	s.seq++
	seq := s.seq
	done := make(chan error, 1)
	st := s.stream
	go func() {
		if err := st.Send(&controlplanev1.IngestRequest{Seq: seq, ReplicaId: s.replica, Records: b.GetRecords(), Artifacts: b.GetArtifacts()}); err != nil {
			done <- err
			return
		}
		ack, err := st.Recv()
		if err == nil && ack.GetSeq() != seq {
			err = fmt.Errorf("acknowledgement of batch %d, want %d", ack.GetSeq(), seq)
		}
		done <- err
	}()
	var err error
	select {
	case err = <-done:
		if err != nil {
			s.cancel()
		}
	case <-ctx.Done():
		err = ctx.Err()
		s.cancel()
		if derr := <-done; derr != nil { // the stream's calls return once it is cancelled
			err = fmt.Errorf("%w (%w)", err, derr)
		}
	}
	if err != nil {
		s.stream, s.cancel = nil, nil
		return fmt.Errorf("send audit batch: %w", err)
	}
	return nil
}

// Close ends the stream.
func (s *AuditSender) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stream != nil {
		_ = s.stream.CloseSend()
		s.cancel()
		s.stream, s.cancel = nil, nil
	}
}

func withToken(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, TokenMetadataKey, token)
}
