package store_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

func testStoredResponses(t *testing.T, s *store.Store) {
	ctx := ctxT(t)
	ada := seedUser(t, s, "ada", store.GroupFaculty)
	bob := seedUser(t, s, "bob", store.GroupStudent)

	first := store.StoredResponse{ID: "resp_first", UserID: ada.ID, Model: "qwen",
		ResponseJSON: `{"id":"resp_first","status":"completed"}`, InputItemsJSON: `[{"role":"user","content":"hi"}]`,
		HistoryJSON: `[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}]`}
	require.NoError(t, s.PutResponse(ctx, first))
	got, err := s.GetResponse(ctx, ada.ID, "resp_first")
	require.NoError(t, err)
	require.WithinDuration(t, time.Now(), got.CreatedAt, time.Minute, "a zero CreatedAt is stamped now")
	first.CreatedAt = got.CreatedAt
	require.Equal(t, first, got)

	// The history chain: the second turn names the first and carries its history.
	second := store.StoredResponse{ID: "resp_second", UserID: ada.ID, PreviousResponseID: "resp_first", Model: "qwen",
		ResponseJSON: `{"id":"resp_second"}`, InputItemsJSON: `[{"role":"user","content":"more"}]`,
		HistoryJSON: strings.TrimSuffix(first.HistoryJSON, "]") + `,{"role":"user","content":"more"},{"role":"assistant","content":"sure"}]`}
	require.NoError(t, s.PutResponse(ctx, second))
	got, err = s.GetResponse(ctx, ada.ID, "resp_second")
	require.NoError(t, err)
	require.Equal(t, "resp_first", got.PreviousResponseID)
	require.Equal(t, second.HistoryJSON, got.HistoryJSON)
	prev, err := s.GetResponse(ctx, ada.ID, got.PreviousResponseID)
	require.NoError(t, err, "the chain leads back to the first turn")
	require.True(t, strings.HasPrefix(got.HistoryJSON, strings.TrimSuffix(prev.HistoryJSON, "]")))

	// Storing the same id again replaces the documents (a stream's final state).
	second.ResponseJSON = `{"id":"resp_second","status":"completed"}`
	second.Model = "qwen-2"
	require.NoError(t, s.PutResponse(ctx, second))
	got, err = s.GetResponse(ctx, ada.ID, "resp_second")
	require.NoError(t, err)
	require.Equal(t, second.ResponseJSON, got.ResponseJSON)
	require.Equal(t, "qwen-2", got.Model)

	// Another user's id does not exist for bob: not read, not overwritten, not deleted.
	_, err = s.GetResponse(ctx, bob.ID, "resp_first")
	require.ErrorIs(t, err, store.ErrNotFound)
	err = s.PutResponse(ctx, store.StoredResponse{ID: "resp_first", UserID: bob.ID, ResponseJSON: `{"forged":true}`})
	require.ErrorIs(t, err, store.ErrNotFound)
	require.ErrorIs(t, s.DeleteResponse(ctx, bob.ID, "resp_first"), store.ErrNotFound)
	got, err = s.GetResponse(ctx, ada.ID, "resp_first")
	require.NoError(t, err)
	require.Equal(t, first.ResponseJSON, got.ResponseJSON, "bob's forged put changed nothing")
	_, err = s.GetResponse(ctx, ada.ID, "resp_missing")
	require.ErrorIs(t, err, store.ErrNotFound)

	// Delete removes only that response, once.
	require.NoError(t, s.DeleteResponse(ctx, ada.ID, "resp_first"))
	_, err = s.GetResponse(ctx, ada.ID, "resp_first")
	require.ErrorIs(t, err, store.ErrNotFound)
	require.ErrorIs(t, s.DeleteResponse(ctx, ada.ID, "resp_first"), store.ErrNotFound)
	_, err = s.GetResponse(ctx, ada.ID, "resp_second")
	require.NoError(t, err)
}

// testStoredResponseSizeCap: a document of exactly 8 MiB survives whole on
// both databases (LONGTEXT on MariaDB); one byte more is refused as invalid.
func testStoredResponseSizeCap(t *testing.T, s *store.Store) {
	ctx := ctxT(t)
	ada := seedUser(t, s, "ada", store.GroupFaculty)
	const limit = 8 << 20
	big := `"` + strings.Repeat("x", limit-2) + `"`
	require.NoError(t, s.PutResponse(ctx, store.StoredResponse{ID: "resp_big", UserID: ada.ID, ResponseJSON: "{}",
		InputItemsJSON: "[]", HistoryJSON: big}))
	got, err := s.GetResponse(ctx, ada.ID, "resp_big")
	require.NoError(t, err)
	require.Len(t, got.HistoryJSON, limit)
	require.Equal(t, big, got.HistoryJSON)

	for _, r := range []store.StoredResponse{
		{ID: "resp_over1", UserID: ada.ID, ResponseJSON: big + " ", InputItemsJSON: "[]", HistoryJSON: "[]"},
		{ID: "resp_over2", UserID: ada.ID, ResponseJSON: "{}", InputItemsJSON: big + " ", HistoryJSON: "[]"},
		{ID: "resp_over3", UserID: ada.ID, ResponseJSON: "{}", InputItemsJSON: "[]", HistoryJSON: big + " "},
	} {
		require.ErrorIs(t, s.PutResponse(ctx, r), store.ErrInvalid, r.ID)
		_, err := s.GetResponse(ctx, ada.ID, r.ID)
		require.ErrorIs(t, err, store.ErrNotFound, "nothing of %s was stored", r.ID)
	}
}

// testPurgeResponses: the purge deletes only rows created before the cutoff,
// at most batch per call, of every user.
func testPurgeResponses(t *testing.T, s *store.Store) {
	ctx := ctxT(t)
	ada := seedUser(t, s, "ada", store.GroupFaculty)
	bob := seedUser(t, s, "bob", store.GroupStudent)
	now := time.Now().UTC().Truncate(time.Second)
	put := func(id string, user int64, created time.Time) {
		require.NoError(t, s.PutResponse(ctx, store.StoredResponse{ID: id, UserID: user, ResponseJSON: "{}",
			InputItemsJSON: "[]", HistoryJSON: "[]", CreatedAt: created}))
	}
	old := []string{"resp_o1", "resp_o2", "resp_o3", "resp_o4", "resp_o5"}
	for i, id := range old {
		put(id, []int64{ada.ID, bob.ID}[i%2], now.Add(-48*time.Hour-time.Duration(i)*time.Minute))
	}
	put("resp_new_ada", ada.ID, now.Add(-time.Hour))
	put("resp_new_bob", bob.ID, now.Add(-23*time.Hour))
	got, err := s.GetResponse(ctx, ada.ID, "resp_o1")
	require.NoError(t, err)
	require.WithinDuration(t, now.Add(-48*time.Hour), got.CreatedAt, time.Second, "an explicit CreatedAt is kept")

	cutoff := now.Add(-24 * time.Hour)
	var counts []int
	for range 4 {
		n, err := s.PurgeResponses(ctx, cutoff, 2)
		require.NoError(t, err)
		counts = append(counts, n)
	}
	require.Equal(t, []int{2, 2, 1, 0}, counts, "batches of at most 2 until none is older")
	for i, id := range old {
		_, err := s.GetResponse(ctx, []int64{ada.ID, bob.ID}[i%2], id)
		require.ErrorIs(t, err, store.ErrNotFound, id)
	}
	_, err = s.GetResponse(ctx, ada.ID, "resp_new_ada")
	require.NoError(t, err, "a response younger than the retention stays")
	_, err = s.GetResponse(ctx, bob.ID, "resp_new_bob")
	require.NoError(t, err, "a response younger than the retention stays")
}
