// Package ollamatest runs a real, CPU-only Ollama server for end-to-end
// tests of the MindRouter data plane.
//
// The server serves a tiny random-weight llama model (see WriteTinyModel):
// about 470 KB of F32 weights, a 64-wide embedding, 2 blocks and a byte-level
// BPE vocabulary. Its output is gibberish made of printable ASCII, so tests
// should assert on structure (chunk counts, token counts, finish reasons)
// rather than on text. With temperature 0 (or a fixed seed) the output is
// repeatable.
//
// The ollama binary is taken from $MINDROUTER_OLLAMA_BIN, else from the
// build cache ($MINDROUTER_CACHE or $HOME/.cache/mindrouter, then
// ollama-0.17.4/ollama), else it is built by .ci/ollama.sh from the
// repository root, which takes several minutes on a cold cache. A test that
// cannot get a binary fails; set MINDROUTER_SKIP_OLLAMA=1 to skip instead.
//
// Start gives each test its own server, stopped by t.Cleanup. Shared gives
// one server per test binary; call StopShared from TestMain after m.Run.
// Starting a server and creating the model takes well under a second; the
// first request loads the model (about 0.3 s), later ones take milliseconds.
// The model runs on one thread (PARAMETER num_thread 1). With more threads,
// llama.cpp's spinning workers slowed a test run from 1 s to over a minute
// when the CPU was oversubscribed.
//
// testdata/recorded holds the bodies a real Ollama 0.17.4 answered for the
// main endpoints. The simulator's tests compare their shapes against it.
//
// This package is for tests only and supports Unix-like systems.
package ollamatest
