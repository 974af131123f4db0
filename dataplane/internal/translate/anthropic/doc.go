// Package anthropic translates Anthropic's Messages API to and from the
// canonical model.
//
// Client side only (there are no Anthropic engines): DecodeMessagesRequest
// and DecodeCountTokensRequest turn POST /v1/messages and
// /v1/messages/count_tokens bodies into a canonical.Request; EncodeResponse
// writes a whole message object; StreamEncoder writes the server-sent event
// sequence (message_start, ping, content_block_start/delta/stop per block,
// message_delta, message_stop) from canonical chunks, whichever engine they
// came from; EncodeError and AppendStreamError write Anthropic's error
// envelope; EncodeModelList and EncodeModel write GET /v1/models.
//
// The package does no I/O and must not import a surface, an engine or the
// control-plane contract.
package anthropic
