package cpclient

import (
	"context"
	"encoding/json"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// Responses stores the Responses API's responses in the control plane
// (ResponseStoreService), so that the data plane stays stateless. Each call
// carries the end user's credential; the control plane answers NOT_FOUND for
// another user's response.
type Responses struct {
	c     controlplanev1.ResponseStoreServiceClient
	token string
}

// NewResponses returns the store over conn, authenticated with the cluster token.
func NewResponses(conn grpc.ClientConnInterface, clusterToken string) *Responses {
	return &Responses{c: controlplanev1.NewResponseStoreServiceClient(conn), token: clusterToken}
}

func (r *Responses) outgoing(ctx context.Context) context.Context {
	return withToken(ctx, r.token)
}

// PutResponse stores (or replaces) a response of the credential's user.
func (r *Responses) PutResponse(ctx context.Context, credential string, s relay.StoredResponse) error {
	input, err := json.Marshal(s.InputItems)
	if err != nil {
		return fmt.Errorf("encode input items: %w", err)
	}
	history, err := json.Marshal(s.History)
	if err != nil {
		return fmt.Errorf("encode history: %w", err)
	}
	_, err = r.c.PutResponse(r.outgoing(ctx), &controlplanev1.PutResponseRequest{Credential: credential, Response: &controlplanev1.StoredResponse{
		Id: s.ID, PreviousResponseId: s.PreviousResponseID, Model: s.Model, ResponseJson: s.Response,
		InputItemsJson: input, HistoryJson: history, CreatedAt: timestamppb.New(s.CreatedAt),
	}})
	return fromStatus(ctx, err)
}

// GetResponse returns one of the credential's user's responses.
func (r *Responses) GetResponse(ctx context.Context, credential, id string) (relay.StoredResponse, error) {
	resp, err := r.c.GetResponse(r.outgoing(ctx), &controlplanev1.GetResponseRequest{Credential: credential, Id: id})
	if err != nil {
		return relay.StoredResponse{}, fromStatus(ctx, err)
	}
	p := resp.GetResponse()
	s := relay.StoredResponse{ID: p.GetId(), PreviousResponseID: p.GetPreviousResponseId(), Model: p.GetModel(),
		Response: p.GetResponseJson(), CreatedAt: p.GetCreatedAt().AsTime()}
	if err := unmarshalItems(p.GetInputItemsJson(), &s.InputItems); err != nil {
		return s, err
	}
	return s, unmarshalItems(p.GetHistoryJson(), &s.History)
}

// DeleteResponse deletes one of the credential's user's responses.
func (r *Responses) DeleteResponse(ctx context.Context, credential, id string) error {
	_, err := r.c.DeleteResponse(r.outgoing(ctx), &controlplanev1.DeleteResponseRequest{Credential: credential, Id: id})
	return fromStatus(ctx, err)
}

func unmarshalItems(b []byte, dst *[]json.RawMessage) error {
	if len(b) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, dst); err != nil {
		return fmt.Errorf("decode stored items: %w", err)
	}
	return nil
}
