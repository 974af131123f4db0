package responses

import (
	"context"
	"log/slog"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mindrouter/mindrouter/controlplane/internal/identity"
	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// MaxDocument bounds each stored document (the database column holds 8 MiB).
const MaxDocument = 8 << 20

// Store is the part of the store the service uses.
type Store interface {
	PutResponse(ctx context.Context, r store.StoredResponse) error
	GetResponse(ctx context.Context, userID int64, id string) (store.StoredResponse, error)
	DeleteResponse(ctx context.Context, userID int64, id string) error
	PurgeResponses(ctx context.Context, cutoff time.Time, batch int) (int, error)
}

// Verifier resolves an API key to its principal (identity.Service).
type Verifier interface {
	Verify(ctx context.Context, credential string) (identity.Principal, error)
}

// Server is the ResponseStoreService.
type Server struct {
	controlplanev1.UnimplementedResponseStoreServiceServer
	st    Store
	ident Verifier
}

// NewServer returns the service over st.
func NewServer(st Store, ident Verifier) *Server { return &Server{st: st, ident: ident} }

// owner is the user of credential. An empty credential is the data plane's
// mistake (it always sends the client's key), not a refused caller.
func (s *Server) owner(ctx context.Context, credential string) (int64, error) {
	if credential == "" {
		return 0, status.Error(codes.InvalidArgument, "the end user's credential is required")
	}
	p, err := s.ident.Verify(ctx, credential)
	if err != nil {
		return 0, err
	}
	if p.UserID == 0 {
		return 0, status.Error(codes.PermissionDenied, "this credential has no user to own responses")
	}
	return p.UserID, nil
}

func validID(id string) error {
	if id == "" || len(id) > 64 {
		return status.Error(codes.InvalidArgument, "a response id has 1 to 64 characters")
	}
	return nil
}

// PutResponse stores a response of the credential's user.
func (s *Server) PutResponse(ctx context.Context, req *controlplanev1.PutResponseRequest) (*controlplanev1.PutResponseResponse, error) {
	uid, err := s.owner(ctx, req.GetCredential())
	if err != nil {
		return nil, err
	}
	r := req.GetResponse()
	if err := validID(r.GetId()); err != nil {
		return nil, err
	}
	for _, doc := range [][]byte{r.GetResponseJson(), r.GetInputItemsJson(), r.GetHistoryJson()} {
		if len(doc) > MaxDocument {
			return nil, status.Errorf(codes.ResourceExhausted, "a stored response document is limited to %d bytes", MaxDocument)
		}
	}
	var created time.Time
	if r.GetCreatedAt() != nil {
		created = r.GetCreatedAt().AsTime()
	}
	err = s.st.PutResponse(ctx, store.StoredResponse{ID: r.GetId(), UserID: uid, PreviousResponseID: r.GetPreviousResponseId(),
		Model: r.GetModel(), ResponseJSON: string(r.GetResponseJson()), InputItemsJSON: string(r.GetInputItemsJson()),
		HistoryJSON: string(r.GetHistoryJson()), CreatedAt: created})
	if err != nil {
		return nil, err
	}
	return &controlplanev1.PutResponseResponse{}, nil
}

// GetResponse returns one of the credential's user's responses.
func (s *Server) GetResponse(ctx context.Context, req *controlplanev1.GetResponseRequest) (*controlplanev1.GetResponseResponse, error) {
	uid, err := s.owner(ctx, req.GetCredential())
	if err != nil {
		return nil, err
	}
	if err := validID(req.GetId()); err != nil {
		return nil, err
	}
	r, err := s.st.GetResponse(ctx, uid, req.GetId())
	if err != nil {
		return nil, err
	}
	return &controlplanev1.GetResponseResponse{Response: &controlplanev1.StoredResponse{
		Id: r.ID, PreviousResponseId: r.PreviousResponseID, Model: r.Model, ResponseJson: []byte(r.ResponseJSON),
		InputItemsJson: []byte(r.InputItemsJSON), HistoryJson: []byte(r.HistoryJSON), CreatedAt: timestamppb.New(r.CreatedAt),
	}}, nil
}

// DeleteResponse deletes one of the credential's user's responses.
func (s *Server) DeleteResponse(ctx context.Context, req *controlplanev1.DeleteResponseRequest) (*controlplanev1.DeleteResponseResponse, error) {
	uid, err := s.owner(ctx, req.GetCredential())
	if err != nil {
		return nil, err
	}
	if err := validID(req.GetId()); err != nil {
		return nil, err
	}
	if err := s.st.DeleteResponse(ctx, uid, req.GetId()); err != nil {
		return nil, err
	}
	return &controlplanev1.DeleteResponseResponse{}, nil
}

// Retention purges stored responses older than Age, Batch rows per
// statement, every Interval while Leading.
type Retention struct {
	Store    Store
	Age      time.Duration
	Interval time.Duration
	Batch    int
	Leading  func() bool
	Logger   *slog.Logger
}

// Run purges until ctx ends; a zero Age keeps responses forever.
func (r Retention) Run(ctx context.Context) error {
	if r.Age <= 0 {
		return nil
	}
	t := time.NewTicker(r.Interval)
	defer t.Stop()
	for {
		if r.Leading == nil || r.Leading() {
			if n, err := r.Pass(ctx, time.Now()); err != nil && ctx.Err() == nil {
				r.Logger.WarnContext(ctx, "stored response retention pass failed", slog.Any("error", err))
			} else if n > 0 {
				r.Logger.InfoContext(ctx, "stored responses purged", slog.Int("count", n))
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Pass deletes every response older than Age at now, in batches.
func (r Retention) Pass(ctx context.Context, now time.Time) (int, error) {
	total := 0
	for {
		n, err := r.Store.PurgeResponses(ctx, now.Add(-r.Age), r.Batch)
		total += n
		if err != nil || n < r.Batch {
			return total, err
		}
	}
}
