package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"image"
	"image/png"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	accountv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/account/v1"
)

func testPNG(t *testing.T, w, h int) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, image.NewGray(image.Rect(0, 0, w, h))))
	return buf.Bytes()
}

// TestConversationImages: a user's turn keeps its images (name, type, bytes,
// SHA-256) and returns them on every read; the JSON export carries them as
// data URLs, the Markdown export names them; bad images (type, size, count,
// on a reply) are INVALID_ARGUMENT and a conversation's image budget is
// FAILED_PRECONDITION.
func TestConversationImages(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	client := accountv1.NewConversationServiceClient(dial(t, s.grpcAddr))
	student := s.signIn(t, "student")
	own := sessionCtx(student.SessionToken, student.CsrfToken)
	created, err := client.CreateConversation(own, &accountv1.CreateConversationRequest{Title: "Pictures", Model: "m"})
	require.NoError(t, err)
	id := created.GetConversation().GetId()

	pic := testPNG(t, 8, 8)
	sum := sha256.Sum256(pic)
	_, err = client.AppendChatMessage(own, &accountv1.AppendChatMessageRequest{ConversationId: id, Message: &accountv1.ChatMessage{
		Role: "user", Content: "What is it?", Images: []*accountv1.ChatImage{{Name: "grey_[1].png", MediaType: "image/png", Data: pic, Sha256: "ignored"}}}})
	require.NoError(t, err)
	got, err := client.GetConversation(own, &accountv1.GetConversationRequest{Id: id})
	require.NoError(t, err)
	require.Len(t, got.GetMessages(), 1)
	ims := got.GetMessages()[0].GetImages()
	require.Len(t, ims, 1)
	require.Equal(t, "grey_[1].png", ims[0].GetName())
	require.Equal(t, "image/png", ims[0].GetMediaType())
	require.Equal(t, pic, ims[0].GetData())
	require.Equal(t, hex.EncodeToString(sum[:]), ims[0].GetSha256(), "the server's hash, not the client's")

	j, err := client.ExportConversation(own, &accountv1.ExportConversationRequest{Id: id})
	require.NoError(t, err)
	var doc struct {
		Messages []struct {
			Images []struct{ Name, MediaType, SHA256, URL string } `json:"images"`
		} `json:"messages"`
	}
	require.NoError(t, json.Unmarshal([]byte(j.GetContent()), &doc))
	require.Len(t, doc.Messages[0].Images, 1)
	require.Equal(t, "data:image/png;base64,"+base64.StdEncoding.EncodeToString(pic), doc.Messages[0].Images[0].URL)
	md, err := client.ExportConversation(own, &accountv1.ExportConversationRequest{Id: id, Format: "markdown"})
	require.NoError(t, err)
	require.Contains(t, md.GetContent(), "*[image: grey\\_\\[1\\].png, image/png, ")
	require.Contains(t, md.GetContent(), "sha256 "+hex.EncodeToString(sum[:]))

	big := append(testPNG(t, 1, 1), make([]byte, 2<<20)...)
	gif := []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;")
	for name, m := range map[string]*accountv1.ChatMessage{
		"svg":        {Role: "user", Content: "x", Images: []*accountv1.ChatImage{{MediaType: "image/svg+xml", Data: []byte("<svg></svg>")}}},
		"mismatch":   {Role: "user", Content: "x", Images: []*accountv1.ChatImage{{MediaType: "image/png", Data: gif}}},
		"empty":      {Role: "user", Content: "x", Images: []*accountv1.ChatImage{{MediaType: "image/png"}}},
		"too large":  {Role: "user", Content: "x", Images: []*accountv1.ChatImage{{MediaType: "image/png", Data: big}}},
		"five":       {Role: "user", Content: "x", Images: []*accountv1.ChatImage{{MediaType: "image/gif", Data: gif}, {MediaType: "image/gif", Data: gif}, {MediaType: "image/gif", Data: gif}, {MediaType: "image/gif", Data: gif}, {MediaType: "image/gif", Data: gif}}},
		"on a reply": {Role: "assistant", Content: "x", Images: []*accountv1.ChatImage{{MediaType: "image/gif", Data: gif}}},
	} {
		_, err = client.AppendChatMessage(own, &accountv1.AppendChatMessageRequest{ConversationId: id, Message: m})
		require.Equal(t, codes.InvalidArgument, status.Code(err), "%s: %v", name, err)
	}

	// The conversation's budget: 20 MiB of images; then a new conversation.
	part := append(testPNG(t, 1, 1), make([]byte, 1900<<10)...)
	for range 10 {
		_, err = client.AppendChatMessage(own, &accountv1.AppendChatMessageRequest{ConversationId: id, Message: &accountv1.ChatMessage{
			Role: "user", Content: "x", Images: []*accountv1.ChatImage{{Name: "a.png", MediaType: "image/png", Data: part}}}})
		require.NoError(t, err)
	}
	_, err = client.AppendChatMessage(own, &accountv1.AppendChatMessageRequest{ConversationId: id, Message: &accountv1.ChatMessage{
		Role: "user", Content: "x", Images: []*accountv1.ChatImage{{Name: "a.png", MediaType: "image/png", Data: part}}}})
	require.Equal(t, codes.FailedPrecondition, status.Code(err), "%v", err)
	require.Contains(t, status.Convert(err).Message(), "start a new one")
}
