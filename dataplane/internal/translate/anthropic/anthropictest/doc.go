// Package anthropictest reads an Anthropic Messages event stream back into a
// message while checking that the sequence is one a strict client accepts: it
// is for tests only (of the translator, the surface and fuzzing).
//
// The checks: message_start comes first and once; blocks are numbered 0, 1, …
// without gaps, each started, given deltas of its own kind and stopped before
// the next starts (no overlap); no input_json_delta is empty; message_delta
// comes once, with every block stopped, and message_stop last; an error event
// ends the stream; pings come only between message_start and message_stop.
package anthropictest
