#!/usr/bin/env python3
"""Writes the committed fuzz seed corpora (small files the project makes).

tests/fuzz/corpus/gguf/: tiny GGUF files (a byte-level BPE vocab, a SentencePiece-style
vocab, a 1-layer llama-shaped model with quantized tensors) written with the `gguf`
package (pip install gguf numpy). tests/fuzz/corpus/text/: varied text for tokenize_fuzz.
Regenerate: python3 scripts/make_fuzz_seeds.py
"""
from pathlib import Path

import numpy as np
import gguf

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fuzz" / "corpus"


def bpe_vocab(w: gguf.GGUFWriter) -> None:
    tokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] + [chr(c) for c in range(33, 127)] + ["Ġ", "Ġt", "he", "Ġthe"]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(tokens)
    w.add_token_types([3, 3, 3] + [1] * (len(tokens) - 3))
    w.add_token_merges(["Ġ t", "h e", "Ġt he"])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)


def spm_vocab(w: gguf.GGUFWriter) -> None:
    tokens = ["<pad>", "<eos>", "<bos>", "<unk>"] + [f"<0x{b:02X}>" for b in range(256)] + ["▁", "▁the", "a", "b", "<start_of_turn>"]
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores([0.0] * 4 + [0.0] * 256 + [-1.0, -2.0, -3.0, -4.0, 0.0])
    w.add_token_types([3, 3, 3, 2] + [6] * 256 + [1, 1, 1, 1, 4])
    w.add_bos_token_id(2)
    w.add_eos_token_id(1)
    w.add_add_bos_token(True)


def tiny_llama(path: Path) -> None:
    w = gguf.GGUFWriter(str(path), "llama")
    d, ff, vocab = 32, 64, 101
    w.add_block_count(1)
    w.add_embedding_length(d)
    w.add_feed_forward_length(ff)
    w.add_head_count(2)
    w.add_head_count_kv(1)
    w.add_context_length(64)
    w.add_layer_norm_rms_eps(1e-5)
    bpe_vocab(w)
    rng = np.random.default_rng(0)
    f32 = lambda *s: rng.standard_normal(s).astype(np.float32) * 0.1
    q8 = lambda *s: gguf.quants.quantize(f32(*s), gguf.GGMLQuantizationType.Q8_0)
    w.add_tensor("token_embd.weight", f32(vocab, d))
    w.add_tensor("output_norm.weight", np.ones(d, np.float32))
    w.add_tensor("blk.0.attn_norm.weight", np.ones(d, np.float32))
    w.add_tensor("blk.0.ffn_norm.weight", np.ones(d, np.float32))
    for name, shape in [("attn_q", (d, d)), ("attn_k", (16, d)), ("attn_v", (16, d)), ("attn_output", (d, d)),
                        ("ffn_gate", (ff, d)), ("ffn_up", (ff, d)), ("ffn_down", (d, ff))]:
        w.add_tensor(f"blk.0.{name}.weight", q8(*shape), raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def vocab_only(path: Path, add_vocab) -> None:
    w = gguf.GGUFWriter(str(path), "llama")
    add_vocab(w)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.close()


def main() -> None:
    (OUT / "gguf").mkdir(parents=True, exist_ok=True)
    (OUT / "text").mkdir(parents=True, exist_ok=True)
    vocab_only(OUT / "gguf" / "vocab_bpe.gguf", bpe_vocab)
    vocab_only(OUT / "gguf" / "vocab_spm.gguf", spm_vocab)
    tiny_llama(OUT / "gguf" / "tiny_llama.gguf")
    texts = ["Hello, world!", "  multiple   spaces\n\n\ttabs", "12345 678 3.14159", "don't I'll we've",
             "日本語のテキスト", "émojis 😀🎉 and ½ ¾", "<|im_start|>user\nHi<|im_end|>", "<start_of_turn>model\n",
             "def f(x):\n    return x ** 2\n", "\xff\xfe invalid utf8 \xc3"]
    for i, t in enumerate(texts):
        data = t.encode("utf-8", "surrogateescape") if isinstance(t, str) else t
        (OUT / "text" / f"seed{i:02d}.txt").write_bytes(t.encode("latin-1") if i == len(texts) - 1 else data)


if __name__ == "__main__":
    main()
