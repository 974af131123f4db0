package audit

import (
	"errors"
	"fmt"
	"io"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// Limits on what one batch may carry (the gRPC message cap bounds its bytes).
const (
	maxBatchRecords   = 5000
	maxRequestIDBytes = 128
)

// Ingester serves AuditIngestService.
type Ingester struct {
	controlplanev1.UnimplementedAuditIngestServiceServer
	w   *Writer
	log *slog.Logger
}

// NewIngester returns the service writing through w.
func NewIngester(w *Writer, log *slog.Logger) *Ingester { return &Ingester{w: w, log: log} }

// Ingest acknowledges each batch once the writer made it durable. A batch it
// cannot make durable ends the stream with UNAVAILABLE; the replica re-sends it.
func (i *Ingester) Ingest(stream controlplanev1.AuditIngestService_IngestServer) error {
	ctx := stream.Context()
	for {
		b, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := validBatch(b); err != nil {
			return status.Error(codes.InvalidArgument, err.Error())
		}
		if err := i.w.Write(ctx, b); err != nil {
			i.log.WarnContext(ctx, "audit batch not stored", slog.Uint64("seq", b.GetSeq()),
				slog.String("replica", b.GetReplicaId()), slog.Any("error", err))
			return status.Error(codes.Unavailable, "audit records cannot be stored now; re-send")
		}
		if err := stream.Send(&controlplanev1.IngestResponse{Seq: b.GetSeq()}); err != nil {
			return err
		}
	}
}

// validBatch refuses batches the store could not take whole.
func validBatch(b *controlplanev1.IngestRequest) error {
	if len(b.GetRecords()) > maxBatchRecords {
		return fmt.Errorf("batch of %d records: at most %d", len(b.GetRecords()), maxBatchRecords)
	}
	for _, r := range b.GetRecords() {
		if id := r.GetRequestId(); id == "" || len(id) > maxRequestIDBytes {
			return fmt.Errorf("record request_id must be 1 to %d bytes", maxRequestIDBytes)
		}
	}
	for _, a := range b.GetArtifacts() {
		if !isSHA256Hex(a.GetSha256()) {
			return errors.New("artifact sha256 must be 64 lower-case hex digits")
		}
	}
	return nil
}

func isSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
