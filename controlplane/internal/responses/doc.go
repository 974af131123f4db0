// Package responses is the control plane's ResponseStoreService: it keeps the
// OpenAI Responses API's stored responses (store=true) for the data planes,
// owned by the user whose API key created them, and purges them after the
// configured retention. It must not interpret the documents it keeps (the
// data plane's JSON) nor run inference.
package responses
