package store_test

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

// testServiceKeyRequests: a request is filed, decided once, and an approved
// one yields exactly one key to its requester even when collected
// concurrently; deleting that key keeps the request's record, deleting the
// user removes the requests.
func testServiceKeyRequests(t *testing.T, s *store.Store) {
	ctx := ctxT(t)
	ann := seedUser(t, s, "skr-ann", store.GroupStudent)
	bob := seedUser(t, s, "skr-bob", store.GroupStudent)
	admin := seedUser(t, s, "skr-admin", store.GroupAdmin)

	form := store.ServiceKeyRequestSpec{UserID: ann.ID, ServiceName: "grader", Justification: "autograder",
		AlternativeContacts: []string{"ta@example.edu", "lab@example.edu"}, DataRiskLevel: "moderate",
		ComplianceTags: []string{"ferpa", "other"}, ComplianceOther: "course policy"}
	r, err := s.CreateServiceKeyRequest(ctx, form)
	require.NoError(t, err)
	assert.Equal(t, store.QuotaRequestPending, r.Status)
	assert.Equal(t, store.ServiceKeyIssue, r.Kind)
	assert.Equal(t, "skr-ann", r.Username)
	got, err := s.GetServiceKeyRequest(ctx, r.ID)
	require.NoError(t, err)
	assert.Equal(t, []string{"ta@example.edu", "lab@example.edu"}, got.AlternativeContacts, "compliance answers are stored")
	assert.Equal(t, "moderate", got.DataRiskLevel)
	assert.Equal(t, []string{"ferpa", "other"}, got.ComplianceTags)
	assert.Equal(t, "course policy", got.ComplianceOther)
	_, err = s.CreateServiceKeyRequest(ctx, store.ServiceKeyRequestSpec{UserID: 1 << 40, ServiceName: "x", Justification: "y"})
	require.ErrorIs(t, err, store.ErrNotFound)

	spec := func(label string) store.APIKeySpec {
		return store.APIKeySpec{Prefix: "mr2_" + label, SHA256: digest(label), Hash: "$argon2id$fake$" + label, Scopes: []string{"inference"}}
	}
	at := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	_, _, err = s.CollectServiceKey(ctx, r.ID, ann.ID, spec("early"), at)
	require.ErrorIs(t, err, store.ErrInvalid, "pending: nothing to collect")

	rv := store.ServiceKeyReview{ReviewerID: admin.ID, Approved: true, Notes: "ok", At: at}
	r, err = s.ReviewServiceKeyRequest(ctx, r.ID, rv)
	require.NoError(t, err)
	assert.Equal(t, store.QuotaRequestApproved, r.Status)
	assert.Equal(t, admin.ID, r.ReviewerID)
	require.NotNil(t, r.ReviewedAt)
	_, err = s.ReviewServiceKeyRequest(ctx, r.ID, rv)
	require.ErrorIs(t, err, store.ErrConflict)
	_, err = s.ReviewServiceKeyRequest(ctx, 1<<40, rv)
	require.ErrorIs(t, err, store.ErrNotFound)

	_, _, err = s.CollectServiceKey(ctx, r.ID, bob.ID, spec("bob"), at)
	require.ErrorIs(t, err, store.ErrNotFound, "another user's request")

	var wg sync.WaitGroup
	var mu sync.Mutex
	var won []store.APIKey
	var errs []error
	for i := range 4 {
		wg.Go(func() {
			_, k, err := s.CollectServiceKey(ctx, r.ID, ann.ID, spec(string(rune('a'+i))+"-race"), at)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			won = append(won, k)
		})
	}
	wg.Wait()
	require.Len(t, won, 1, "one key per request: %v", errs)
	for _, err := range errs {
		assert.ErrorIs(t, err, store.ErrConflict)
	}
	k := won[0]
	assert.True(t, k.IsService)
	assert.Equal(t, "grader", k.ServiceName)
	assert.Equal(t, ann.ID, k.UserID)
	assert.Nil(t, k.ExpiresAt)
	keys, err := s.ListAPIKeys(ctx, store.APIKeyFilter{UserID: ann.ID})
	require.NoError(t, err)
	assert.Len(t, keys, 1, "the losers stored no key")

	testServiceKeyRevocation(t, s, k, ann.ID, bob.ID, admin.ID, at)

	deleted, err := s.DeleteAPIKey(ctx, k.ID)
	require.NoError(t, err)
	assert.Equal(t, k.SHA256, deleted.SHA256)
	_, err = s.DeleteAPIKey(ctx, k.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	r, err = s.GetServiceKeyRequest(ctx, r.ID)
	require.NoError(t, err)
	assert.Equal(t, k.ID, r.APIKeyID, "the request keeps naming the deleted key")

	list, err := s.ListServiceKeyRequests(ctx, store.ServiceKeyRequestFilter{UserID: ann.ID, Status: store.QuotaRequestApproved, Kind: store.ServiceKeyIssue})
	require.NoError(t, err)
	require.Len(t, list, 1)
	_, err = s.ListServiceKeyRequests(ctx, store.ServiceKeyRequestFilter{Status: "bogus"})
	require.ErrorIs(t, err, store.ErrInvalid)

	_, err = s.DeleteUser(ctx, ann.ID)
	require.NoError(t, err)
	list, err = s.ListServiceKeyRequests(ctx, store.ServiceKeyRequestFilter{UserID: ann.ID})
	require.NoError(t, err)
	assert.Empty(t, list, "deleting the user removes their requests")
}

// testServiceKeyRevocation: the owner of an active service key files one
// pending revocation request at a time; others' keys, personal keys and
// revoked keys are refused; a revocation request yields no key.
func testServiceKeyRevocation(t *testing.T, s *store.Store, k store.APIKey, owner, other, admin int64, at time.Time) {
	ctx := ctxT(t)
	_, err := s.CreateServiceKeyRevocationRequest(ctx, other, k.ID, "not mine")
	require.ErrorIs(t, err, store.ErrNotFound, "another user's key")
	personal, err := s.CreateAPIKey(ctx, store.APIKeySpec{UserID: owner, Name: "laptop", Prefix: "mr2_laptop", SHA256: digest("laptop"), Hash: "$argon2id$fake$laptop"})
	require.NoError(t, err)
	_, err = s.CreateServiceKeyRevocationRequest(ctx, owner, personal.ID, "x")
	require.ErrorIs(t, err, store.ErrInvalid, "a personal key is revoked directly")

	r, err := s.CreateServiceKeyRevocationRequest(ctx, owner, k.ID, "the grader is retired")
	require.NoError(t, err)
	assert.Equal(t, store.ServiceKeyRevocation, r.Kind)
	assert.Equal(t, k.ID, r.APIKeyID)
	assert.Equal(t, "grader", r.ServiceName)
	assert.Equal(t, "the grader is retired", r.Justification)
	_, err = s.CreateServiceKeyRevocationRequest(ctx, owner, k.ID, "again")
	require.ErrorIs(t, err, store.ErrConflict, "one pending revocation request per key")

	list, err := s.ListServiceKeyRequests(ctx, store.ServiceKeyRequestFilter{Kind: store.ServiceKeyRevocation, Status: store.QuotaRequestPending})
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, r.ID, list[0].ID)
	_, err = s.ListServiceKeyRequests(ctx, store.ServiceKeyRequestFilter{Kind: "bogus"})
	require.ErrorIs(t, err, store.ErrInvalid)

	_, err = s.ReviewServiceKeyRequest(ctx, r.ID, store.ServiceKeyReview{ReviewerID: admin, Approved: true, At: at})
	require.NoError(t, err)
	_, _, err = s.CollectServiceKey(ctx, r.ID, owner, store.APIKeySpec{Prefix: "mr2_x", SHA256: digest("x"), Hash: "h"}, at)
	require.ErrorIs(t, err, store.ErrInvalid, "a revocation request yields no key")

	_, err = s.RevokeAPIKey(ctx, k.ID)
	require.NoError(t, err)
	_, err = s.CreateServiceKeyRevocationRequest(ctx, owner, k.ID, "late")
	require.ErrorIs(t, err, store.ErrInvalid, "a revoked key")
}
