package ollamatest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand"
	"os"

	"github.com/ollama/ollama/fs/ggml"
)

// Shape of the tiny model written by WriteTinyModel.
const (
	TinyContextLength = 512 // llama.context_length
	TinyEmbedding     = 64  // llama.embedding_length
	TinyBlocks        = 2   // llama.block_count
	TinyHeads         = 4   // llama.attention.head_count (and head_count_kv)
	TinyFeedForward   = 128 // llama.feed_forward_length
)

// Special tokens of the tiny model's vocabulary.
const (
	TinyBOS = "<|begin_of_text|>"
	TinyEOS = "<|end_of_text|>"
)

// Weight scales of the tiny model, tuned by hand against Ollama 0.17.4: with
// these, sampling at Ollama's default temperature ends with EOS after about
// 80 tokens on average (from 1 to a few hundred), while greedy decoding
// (temperature 0) settles into a short cycle that never emits EOS.
const (
	embdStd       = 0.1  // token embeddings, dimensions 1..63
	blockStd      = 0.05 // attention and feed-forward matrices
	outStd        = 0.3  // output projection
	repeatPenalty = 2    // subtracted, times the token's embedding, from its output row
	suppressBias  = -5   // output weight on dimension 0 for unwanted tokens
	eosBias       = 1.8  // output weight on dimension 0 for EOS
)

// tinyMerges are the BPE merges of the tiny vocabulary, in rank order, in
// GPT-2 byte-to-unicode form ("Ġ" is a space).
var tinyMerges = []string{
	"Ġ t", "h e", "Ġt he", "i n", "e r", "a n", "o n", "Ġ a", "r e", "Ġ s",
}

// Token types as llama.cpp defines them.
const (
	tokenTypeNormal  int32 = 1
	tokenTypeControl int32 = 3
)

// gpt2ByteToUnicode returns GPT-2's reversible byte-to-unicode table: the
// printable bytes map to themselves, the others to code points from U+0100
// on (a space becomes "Ġ", a newline "Ċ").
func gpt2ByteToUnicode() [256]rune {
	var table [256]rune
	printable := func(b int) bool {
		return ('!' <= b && b <= '~') || (0xA1 <= b && b <= 0xAC) || (0xAE <= b && b <= 0xFF)
	}
	n := 0
	for b := range 256 {
		if printable(b) {
			table[b] = rune(b)
		} else {
			table[b] = rune(256 + n)
			n++
		}
	}
	return table
}

// tinyVocab returns the tokens and their types: the 256 byte tokens (token
// id = byte value), the merged tokens, then BOS and EOS.
func tinyVocab() (tokens []string, types []int32, bos, eos uint32) {
	table := gpt2ByteToUnicode()
	for b := range 256 {
		tokens = append(tokens, string(table[b]))
		types = append(types, tokenTypeNormal)
	}
	for _, m := range tinyMerges {
		var left, right string
		if _, err := fmt.Sscanf(m, "%s %s", &left, &right); err != nil {
			panic(err)
		}
		tokens = append(tokens, left+right)
		types = append(types, tokenTypeNormal)
	}
	bos = uint32(len(tokens))
	tokens = append(tokens, TinyBOS)
	types = append(types, tokenTypeControl)
	eos = uint32(len(tokens))
	tokens = append(tokens, TinyEOS)
	types = append(types, tokenTypeControl)
	return tokens, types, bos, eos
}

// WriteTinyModel writes a tiny random-weight llama model in GGUF format to
// path: embedding 64, 2 blocks, 4 heads, feed-forward 128, context 512, all
// tensors F32, with a GPT-2 style byte-level BPE vocabulary. The weights are
// drawn from a generator seeded with seed, so the file is deterministic.
//
// The weights are random but shaped so that the model only emits printable
// ASCII (no newlines, no invalid UTF-8, no BOS) and rarely the same token
// twice in a row. Sampled at a temperature near Ollama's default 0.8, it
// emits EOS after about 80 tokens on average; greedy decoding (temperature
// 0) cycles through a few tokens and never emits EOS, so such requests run
// to num_predict, or to Ollama's cap of 10 × num_ctx tokens without one.
func WriteTinyModel(path string, seed int64) error {
	tokens, types, bos, eos := tinyVocab()
	nVocab := len(tokens)
	const nEmbd, nFF = TinyEmbedding, TinyFeedForward

	kv := ggml.KV{
		"general.architecture":                   "llama",
		"general.name":                           "mindrouter-tiny",
		"general.file_type":                      uint32(0), // all F32
		"llama.context_length":                   uint32(TinyContextLength),
		"llama.embedding_length":                 uint32(nEmbd),
		"llama.block_count":                      uint32(TinyBlocks),
		"llama.feed_forward_length":              uint32(nFF),
		"llama.attention.head_count":             uint32(TinyHeads),
		"llama.attention.head_count_kv":          uint32(TinyHeads),
		"llama.attention.layer_norm_rms_epsilon": float32(1e-5),
		"llama.rope.dimension_count":             uint32(nEmbd / TinyHeads),
		"llama.rope.freq_base":                   float32(10000),
		"llama.vocab_size":                       uint32(nVocab),
		"tokenizer.ggml.model":                   "gpt2",
		"tokenizer.ggml.pre":                     "default",
		"tokenizer.ggml.tokens":                  tokens,
		"tokenizer.ggml.token_type":              types,
		"tokenizer.ggml.scores":                  make([]float32, nVocab),
		"tokenizer.ggml.merges":                  tinyMerges,
		"tokenizer.ggml.bos_token_id":            bos,
		"tokenizer.ggml.eos_token_id":            eos,
		"tokenizer.ggml.add_bos_token":           true,
		"tokenizer.ggml.add_eos_token":           false,
	}

	rng := rand.New(rand.NewSource(seed))
	normal := func(n int, std float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64() * std)
		}
		return v
	}
	ones := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = 1
		}
		return v
	}

	// Token embeddings: dimension 0 is a constant 1 in every token. The
	// blocks never write to it (row 0 of attn_output and ffn_down is zero)
	// and they are weak, so the final hidden state is close to the current
	// token's embedding plus a constant "bias" input in dimension 0.
	embd := normal(nVocab*nEmbd, embdStd)
	for t := range nVocab {
		embd[t*nEmbd] = 1
	}

	// Output projection: random for printable ASCII and merged tokens, with
	// a penalty for repeating the current token (Ollama aborts a stream
	// after 31 identical tokens in a row); through dimension 0, a large
	// negative bias for the other bytes and BOS, and a positive one for EOS.
	out := normal(nVocab*nEmbd, outStd)
	for t := range nVocab {
		for i := 1; i < nEmbd; i++ {
			out[t*nEmbd+i] -= repeatPenalty * embd[t*nEmbd+i]
		}
		printable := t >= 0x20 && t <= 0x7E
		merged := t >= 256 && uint32(t) != bos && uint32(t) != eos
		if printable || merged {
			out[t*nEmbd] = 0
		} else {
			out[t*nEmbd] = suppressBias
		}
	}
	out[int(eos)*nEmbd] = eosBias

	tensor := func(name string, data []float32, shape ...uint64) *ggml.Tensor {
		var buf bytes.Buffer
		if err := binary.Write(&buf, binary.LittleEndian, data); err != nil {
			panic(err) // cannot fail for a []float32
		}
		return &ggml.Tensor{Name: name, Kind: uint32(ggml.TensorTypeF32), Shape: shape, WriterTo: bytes.NewReader(buf.Bytes())}
	}
	// zeroRow0 keeps a projection from writing to residual dimension 0.
	zeroRow0 := func(v []float32, rowLen int) []float32 {
		clear(v[:rowLen])
		return v
	}

	// Shapes are in GGML order: the first dimension is the contiguous one,
	// so a [in, out] matrix is stored as out rows of in values.
	ts := []*ggml.Tensor{
		tensor("token_embd.weight", embd, nEmbd, uint64(nVocab)),
		tensor("output_norm.weight", ones(nEmbd), nEmbd),
		tensor("output.weight", out, nEmbd, uint64(nVocab)),
	}
	for b := range TinyBlocks {
		p := fmt.Sprintf("blk.%d.", b)
		ts = append(ts,
			tensor(p+"attn_norm.weight", ones(nEmbd), nEmbd),
			tensor(p+"attn_q.weight", normal(nEmbd*nEmbd, blockStd), nEmbd, nEmbd),
			tensor(p+"attn_k.weight", normal(nEmbd*nEmbd, blockStd), nEmbd, nEmbd),
			tensor(p+"attn_v.weight", normal(nEmbd*nEmbd, blockStd), nEmbd, nEmbd),
			tensor(p+"attn_output.weight", zeroRow0(normal(nEmbd*nEmbd, blockStd), nEmbd), nEmbd, nEmbd),
			tensor(p+"ffn_norm.weight", ones(nEmbd), nEmbd),
			tensor(p+"ffn_gate.weight", normal(nEmbd*nFF, blockStd), nEmbd, nFF),
			tensor(p+"ffn_up.weight", normal(nEmbd*nFF, blockStd), nEmbd, nFF),
			tensor(p+"ffn_down.weight", zeroRow0(normal(nFF*nEmbd, blockStd), nFF), nFF, nEmbd),
		)
	}

	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := ggml.WriteGGUF(f, kv, ts); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
