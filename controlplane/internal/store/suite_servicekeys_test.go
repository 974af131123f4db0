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

	r, err := s.CreateServiceKeyRequest(ctx, ann.ID, "grader", "autograder")
	require.NoError(t, err)
	assert.Equal(t, store.QuotaRequestPending, r.Status)
	assert.Equal(t, "skr-ann", r.Username)
	_, err = s.CreateServiceKeyRequest(ctx, 1<<40, "x", "y")
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

	deleted, err := s.DeleteAPIKey(ctx, k.ID)
	require.NoError(t, err)
	assert.Equal(t, k.SHA256, deleted.SHA256)
	_, err = s.DeleteAPIKey(ctx, k.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	r, err = s.GetServiceKeyRequest(ctx, r.ID)
	require.NoError(t, err)
	assert.Equal(t, k.ID, r.APIKeyID, "the request keeps naming the deleted key")

	list, err := s.ListServiceKeyRequests(ctx, store.ServiceKeyRequestFilter{UserID: ann.ID, Status: store.QuotaRequestApproved})
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
