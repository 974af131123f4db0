// Package tokens estimates token counts without a tokenizer: about four
// characters per token plus a fixed overhead per message and per image. The
// estimates feed admission (the control plane reserves quota from them) and
// stand in for usage when an engine reports none; they must stay cheap, since
// they run on every request, and must never do I/O.
package tokens
