package store_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

func testConversations(t *testing.T, s *store.Store) {
	ctx := ctxT(t)
	ada := seedUser(t, s, "ada", store.GroupFaculty)
	bob := seedUser(t, s, "bob", store.GroupStudent)

	first, err := s.CreateConversation(ctx, ada.ID, "Photosynthesis", "llama3")
	require.NoError(t, err)
	second, err := s.CreateConversation(ctx, ada.ID, "Rust lifetimes", "")
	require.NoError(t, err)
	_, err = s.CreateConversation(ctx, bob.ID, "Bob's", "m")
	require.NoError(t, err)

	// A long reply (over TEXT's 64 KiB on MariaDB) survives whole.
	long := strings.Repeat("é", 70_000)
	u, err := s.AppendChatMessage(ctx, ada.ID, store.ChatMessage{ConversationID: first.ID, Role: store.ChatRoleUser, Content: "How do plants eat?"})
	require.NoError(t, err)
	require.Equal(t, store.ChatStatusComplete, u.Status, "the default status")
	a, err := s.AppendChatMessage(ctx, ada.ID, store.ChatMessage{ConversationID: first.ID, Role: store.ChatRoleAssistant, Content: long,
		Reasoning: "think", Model: "qwen", Status: store.ChatStatusStopped, PromptTokens: 7, CompletionTokens: 9, RequestID: "req-1"})
	require.NoError(t, err)
	require.Greater(t, a.ID, u.ID)

	c, ms, err := s.GetConversation(ctx, ada.ID, first.ID)
	require.NoError(t, err)
	require.Equal(t, "qwen", c.Model, "a reply's model becomes the conversation's")
	require.Equal(t, 2, c.MessageCount)
	require.Len(t, ms, 2)
	require.Equal(t, "How do plants eat?", ms[0].Content)
	require.Equal(t, long, ms[1].Content)
	require.Equal(t, store.ChatMessage{ID: a.ID, ConversationID: first.ID, Role: store.ChatRoleAssistant, Content: long, Reasoning: "think",
		Model: "qwen", Status: store.ChatStatusStopped, PromptTokens: 7, CompletionTokens: 9, RequestID: "req-1", CreatedAt: ms[1].CreatedAt}, ms[1])

	// Images are kept with their turn, bytes exact (more than TEXT's 64 KiB on MariaDB).
	pic := store.ChatImage{Name: "x.png", MediaType: "image/png", SHA256: "ab", Data: []byte(strings.Repeat("\x89PNG\x00\xff", 20_000))}
	withImage, err := s.AppendChatMessage(ctx, ada.ID, store.ChatMessage{ConversationID: second.ID, Role: store.ChatRoleUser, Content: "see", Images: []store.ChatImage{pic}})
	require.NoError(t, err)
	require.Equal(t, []store.ChatImage{pic}, withImage.Images)
	_, ims, err := s.GetConversation(ctx, ada.ID, second.ID)
	require.NoError(t, err)
	require.Len(t, ims, 1)
	require.Equal(t, []store.ChatImage{pic}, ims[0].Images)
	require.Empty(t, ms[0].Images)

	list, err := s.ListConversations(ctx, ada.ID)
	require.NoError(t, err)
	require.Len(t, list, 2, "bob's conversation is not in ada's list")
	require.Equal(t, second.ID, list[0].ID, "the conversation with the newest message first")
	require.Equal(t, 1, list[0].MessageCount)
	require.Equal(t, first.ID, list[1].ID)

	// Another user's conversation does not exist for bob, whatever he tries.
	_, _, err = s.GetConversation(ctx, bob.ID, first.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.RenameConversation(ctx, bob.ID, first.ID, "mine now")
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.AppendChatMessage(ctx, bob.ID, store.ChatMessage{ConversationID: first.ID, Role: store.ChatRoleUser, Content: "x"})
	require.ErrorIs(t, err, store.ErrNotFound)
	require.ErrorIs(t, s.DeleteConversation(ctx, bob.ID, first.ID), store.ErrNotFound)

	renamed, err := s.RenameConversation(ctx, ada.ID, first.ID, "Plants")
	require.NoError(t, err)
	require.Equal(t, "Plants", renamed.Title)
	require.Equal(t, 2, renamed.MessageCount)
	_, err = s.RenameConversation(ctx, ada.ID, first.ID, strings.Repeat("x", 201))
	require.ErrorIs(t, err, store.ErrInvalid)
	_, err = s.AppendChatMessage(ctx, ada.ID, store.ChatMessage{ConversationID: first.ID, Role: "system", Content: "x"})
	require.ErrorIs(t, err, store.ErrInvalid)

	require.NoError(t, s.DeleteConversation(ctx, ada.ID, first.ID))
	_, _, err = s.GetConversation(ctx, ada.ID, first.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.ErrorIs(t, s.DeleteConversation(ctx, ada.ID, first.ID), store.ErrNotFound)
	list, err = s.ListConversations(ctx, ada.ID)
	require.NoError(t, err)
	require.Len(t, list, 1)
}
