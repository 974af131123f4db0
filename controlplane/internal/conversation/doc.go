// Package conversation serves the web chat's conversations (ConversationService):
// each user's own, kept in the control plane's database through the store.
// Every method resolves the caller from the authorized context and acts on
// that user's rows alone; another user's conversation is NOT_FOUND, for admins
// too.
package conversation
