package server

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	accountv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/account/v1"
)

// TestConversationsAreTheOwnersAlone: a conversation is its owner's; another
// user, an auditor or an admin finds nothing, by session or by key; writes
// need the owner's session and its CSRF token; and no conversation write is
// copied into the admin-action trail.
func TestConversationsAreTheOwnersAlone(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	client := accountv1.NewConversationServiceClient(dial(t, s.grpcAddr))
	student := s.signIn(t, "student")
	auditor := s.signIn(t, "auditor")
	own := sessionCtx(student.SessionToken, student.CsrfToken)

	created, err := client.CreateConversation(own, &accountv1.CreateConversationRequest{Title: "  Plants  ", Model: "m"})
	require.NoError(t, err)
	c := created.GetConversation()
	require.Equal(t, "Plants", c.GetTitle())
	_, err = client.AppendChatMessage(own, &accountv1.AppendChatMessageRequest{ConversationId: c.GetId(),
		Message: &accountv1.ChatMessage{Role: "user", Content: "How do plants eat?"}})
	require.NoError(t, err)
	_, err = client.AppendChatMessage(own, &accountv1.AppendChatMessageRequest{ConversationId: c.GetId(),
		Message: &accountv1.ChatMessage{Role: "assistant", Content: "With light.", Reasoning: "easy", Model: "m", Status: "stopped", RequestId: "r1"}})
	require.NoError(t, err)

	got, err := client.GetConversation(own, &accountv1.GetConversationRequest{Id: c.GetId()})
	require.NoError(t, err)
	require.Len(t, got.GetMessages(), 2)
	require.Equal(t, "stopped", got.GetMessages()[1].GetStatus())

	// The owner's API key reads, but cannot write (a leaked key cannot rewrite chats).
	byKey := keyCtx(s.keys["student"])
	list, err := client.ListConversations(byKey, &accountv1.ListConversationsRequest{})
	require.NoError(t, err)
	require.Len(t, list.GetConversations(), 1)
	require.Equal(t, int32(2), list.GetConversations()[0].GetMessageCount())
	_, err = client.RenameConversation(byKey, &accountv1.RenameConversationRequest{Id: c.GetId(), Title: "x"})
	require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
	// A session without its CSRF token cannot write either.
	_, err = client.DeleteConversation(sessionCtx(student.SessionToken, ""), &accountv1.DeleteConversationRequest{Id: c.GetId()})
	require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)

	// Nobody else sees it: not another session, not an auditor's or admin's key.
	other := sessionCtx(auditor.SessionToken, auditor.CsrfToken)
	for name, rctx := range map[string]context.Context{"auditor-session": other, "admin-key": keyCtx(s.keys["admin"]), "auditor-key": keyCtx(s.keys["auditor"])} {
		_, err = client.GetConversation(rctx, &accountv1.GetConversationRequest{Id: c.GetId()})
		require.Equal(t, codes.NotFound, status.Code(err), "%s: %v", name, err)
		_, err = client.ExportConversation(rctx, &accountv1.ExportConversationRequest{Id: c.GetId(), Format: "markdown"})
		require.Equal(t, codes.NotFound, status.Code(err), "%s: %v", name, err)
		l, err := client.ListConversations(rctx, &accountv1.ListConversationsRequest{})
		require.NoError(t, err)
		require.Empty(t, l.GetConversations(), name)
	}
	_, err = client.RenameConversation(other, &accountv1.RenameConversationRequest{Id: c.GetId(), Title: "mine"})
	require.Equal(t, codes.NotFound, status.Code(err), "%v", err)
	_, err = client.AppendChatMessage(other, &accountv1.AppendChatMessageRequest{ConversationId: c.GetId(),
		Message: &accountv1.ChatMessage{Role: "user", Content: "injected"}})
	require.Equal(t, codes.NotFound, status.Code(err), "%v", err)
	_, err = client.DeleteConversation(other, &accountv1.DeleteConversationRequest{Id: c.GetId()})
	require.Equal(t, codes.NotFound, status.Code(err), "%v", err)

	// Bad input is INVALID_ARGUMENT.
	for _, req := range []*accountv1.AppendChatMessageRequest{
		{ConversationId: c.GetId()},
		{ConversationId: c.GetId(), Message: &accountv1.ChatMessage{Role: "system", Content: "x"}},
		{ConversationId: c.GetId(), Message: &accountv1.ChatMessage{Role: "user", Content: "x", Status: "odd"}},
		{ConversationId: c.GetId(), Message: &accountv1.ChatMessage{Role: "user", Content: "x", PromptTokens: -1}},
	} {
		_, err = client.AppendChatMessage(own, req)
		require.Equal(t, codes.InvalidArgument, status.Code(err), "%v: %v", req, err)
	}
	_, err = client.CreateConversation(own, &accountv1.CreateConversationRequest{Title: "   "})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	_, err = client.ExportConversation(own, &accountv1.ExportConversationRequest{Id: c.GetId(), Format: "pdf"})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)

	// Exports: JSON that parses back, Markdown with the thinking folded.
	j, err := client.ExportConversation(own, &accountv1.ExportConversationRequest{Id: c.GetId()})
	require.NoError(t, err)
	require.Equal(t, "application/json", j.GetContentType())
	var doc struct {
		Title    string `json:"title"`
		Messages []struct {
			Role, Content, Status string
		} `json:"messages"`
	}
	require.NoError(t, json.Unmarshal([]byte(j.GetContent()), &doc))
	require.Equal(t, "Plants", doc.Title)
	require.Len(t, doc.Messages, 2)
	require.Equal(t, "With light.", doc.Messages[1].Content)
	md, err := client.ExportConversation(own, &accountv1.ExportConversationRequest{Id: c.GetId(), Format: "markdown"})
	require.NoError(t, err)
	require.Contains(t, md.GetContent(), "# Plants\n")
	require.Contains(t, md.GetContent(), "<details><summary>Thinking</summary>\n\neasy\n\n</details>")
	require.Contains(t, md.GetContent(), "*(stopped)*")

	renamed, err := client.RenameConversation(own, &accountv1.RenameConversationRequest{Id: c.GetId(), Title: "Botany"})
	require.NoError(t, err)
	require.Equal(t, "Botany", renamed.GetConversation().GetTitle())
	_, err = client.DeleteConversation(own, &accountv1.DeleteConversationRequest{Id: c.GetId()})
	require.NoError(t, err)
	_, err = client.GetConversation(own, &accountv1.GetConversationRequest{Id: c.GetId()})
	require.Equal(t, codes.NotFound, status.Code(err), "%v", err)

	// Chat content never reaches the admin-action trail.
	st, ok := s.srv.actions.(*store.Store)
	require.True(t, ok)
	actions, _, err := st.SearchAdminActions(t.Context(), store.AdminActionFilter{}, "", 1000)
	require.NoError(t, err)
	for _, a := range actions {
		require.NotContains(t, a.Action, "conversation", "%+v", a)
		require.NotContains(t, a.Action, "chat_message", "%+v", a)
	}
}
