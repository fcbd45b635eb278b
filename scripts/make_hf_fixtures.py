#!/usr/bin/env python3
"""Tiny Hugging Face model directories with reference logits: tests/fixtures/hf/<name>/.

    python3 scripts/make_hf_fixtures.py [--out-dir tests/fixtures/hf] [--models-dir models]

Needs torch, transformers (5.x), tokenizers, safetensors; CPU only, ~1 minute. Regenerating
changes every file (weights are random with fixed seeds, but tokenizer training and
transformers versions may move), so commit the whole folder together.

What it builds, per model (hidden 64, 2-3 layers, random weights of a larger scale than
transformers' init so logits are well separated, norms and biases randomised too):

  name     class                 tokenizer (trained here on CORPUS)              weights
  llama    LlamaForCausalLM      byte-level BPE, Llama-3 Split regex, BOS added  bf16, 3 shards + index,
                                 by TemplateProcessing, ignore_merges             rope linear x2
  mistral  MistralForCausalLM    SentencePiece-style BPE + byte_fallback,        f32, sliding window 8
                                 legacy Prepend+Replace normalizer, <s> added
  qwen2    Qwen2ForCausalLM      byte-level BPE, Qwen2 Split regex, NFC          f32, q/k/v biases, tied
  qwen3    Qwen3ForCausalLM      the qwen2 tokenizer                              f16, q/k norms, head_dim 32
  gemma3   Gemma3ForCausalLM     SentencePiece-style (Gemma's layout: Replace     bf16, 2 sliding (window 8)
                                 normalizer + Split(" ")), <bos> added            + 1 full layer, qk-norm,
                                                                                  post norms, qpas 24, softcap

SentencePiece-style vocabularies get "complete" merges the way transformers converts a
SentencePiece model (every split of every piece into two pieces, ordered by the merged
piece's rank), so HF's pair-rank BPE and SentencePiece's score order agree.

Each directory gets config.json, generation_config.json, model*.safetensors, tokenizer.json,
tokenizer_config.json (+ chat_template.jinja for llama) and reference.json:
  prompt text, its ids (HF tokenizer, add_special_tokens=True), and for every position the
  TOP_K largest logits with ids, from the saved directory reloaded in fp32 (eager attention);
  "tokenizer_cases": TEXTS encoded by the HF tokenizer with and without special tokens.

Also writes smollm2-tokenizer/ (tokenizer.json + tokenizer_config.json, minified): SmolLM2's
real vocabulary, built by transformers from the GGUF (--models-dir) with SmolLM2's
Digits(individual)+ByteLevel pre-tokenizer restored (transformers drops it, see
docs/tokenizer.md), to compare the tokenizer.json path with the GGUF path.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import torch
import transformers
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (AutoModelForCausalLM, AutoTokenizer, Gemma3ForCausalLM, Gemma3TextConfig,
                          GenerationConfig, LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM,
                          PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM)

REPO = Path(__file__).resolve().parent.parent
TOP_K = 8
SPACE = "\u2581"

LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                r"\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
               r"\s*[\r\n]+|\s+(?!\S)|\s+")

CORPUS = [
    "The quick brown fox jumps over the lazy dog. The dog sleeps in the sun all day long.",
    "Once upon a time there was a little town by the sea, where the fishing boats came in every morning.",
    "She walked past the bakery and the old stone pier, and watched the gulls over the harbour.",
    "def fibonacci(n):\n    seq = [0, 1]\n    while len(seq) < n:\n        seq.append(seq[-1] + seq[-2])\n    return seq\n",
    "Numbers: 1, 2, 3, 10, 42, 100, 2024, 3.14159 and 1,000,000 are all in this sentence.",
    "Café au lait, naïve façade, Zoë's jalapeño and the Straße in Köln.",
    "I'm sure they'll say it's fine, don't you think? We've seen it'd be OK.",
    "Questions for discussion: why do you think the keepers wrote so little about their feelings?",
    "The lighthouse keeper climbed the stairs, trimmed the wicks and lit the lamp before sunset.",
    "In the winter the storm broke three panes of the lantern room, but the light never went out.",
] * 4

PROMPT = ("The lighthouse keeper said: \"I'm sure the storm will pass by 10 o'clock.\" Café naïve 東京 🙂!\n"
          "def f(x):\n    return x * 2  # 3.14159\n\nQuestions for the harbour town?")

TEXTS = [
    "", "Hello world", " leading space", "  two leading spaces", "trailing spaces   ", "a" + " " * 20 + "b",
    "tabs\tand\t\ttabs", "new\nline\n\n\nthree", "windows\r\nline", "12345678901234567890", "3.14159 and 2,718",
    "I'm sure they'll say it's fine, DON'T you?", "Café naïve façade Zoë", "東京は日本の首都です。", "🙂🚀 👩‍👩‍👧",
    "def f(x):\n    return x * 2", "\u00e9 vs e\u0301", "x\x00y\x7f",
]
BYTE_LEVEL_SPECIAL_TEXTS = ["<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n", "<|begin_of_text|>Hello"]
SPM_SPECIAL_TEXTS = ["<s>[INST] Hello [/INST]", "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n",
                     "a <s> b </s> c"]


def check(cond: bool, msg: str) -> None:
    if not cond:
        print(f"make_hf_fixtures: CHECK FAILED: {msg}", file=sys.stderr)
        sys.exit(1)


# ---------------------------------------------------------------------------------------------
# Tokenizers
# ---------------------------------------------------------------------------------------------

def byte_level_tokenizer(regex: str, bos: str | None) -> PreTrainedTokenizerFast:
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|begin_of_text|>"]
    tok = Tokenizer(models.BPE(ignore_merges=regex == LLAMA3_REGEX))
    if regex == QWEN2_REGEX:
        tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(regex), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=512, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS, trainer)
    if bos is not None:
        tok.post_processor = processors.TemplateProcessing(single=f"{bos} $A", special_tokens=[(bos, tok.token_to_id(bos))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token="<|im_end|>",
                                   unk_token=None, pad_token="<|endoftext|>")


def complete_merges(vocab: dict[str, int], pieces: set[str]) -> list[tuple[str, str]]:
    merges = []
    for piece, pid in vocab.items():
        if piece not in pieces:
            continue
        for k in range(1, len(piece)):
            left, right = piece[:k], piece[k:]
            if left in pieces and right in pieces:
                merges.append((pid, vocab[left], vocab[right], left, right))
    merges.sort()
    return [(m[3], m[4]) for m in merges]


def spm_tokenizer(style: str) -> PreTrainedTokenizerFast:
    """style 'legacy' (Llama-2 / Mistral v0.1 layout) or 'gemma'."""
    trainer_tok = Tokenizer(models.BPE())
    trainer_tok.normalizer = normalizers.Sequence([normalizers.Prepend(SPACE), normalizers.Replace(" ", SPACE)])
    trainer_tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=SPACE, prepend_scheme="never", split=True)
    trainer = trainers.BpeTrainer(vocab_size=400, show_progress=False, limit_alphabet=120)
    trainer_tok.train_from_iterator(CORPUS, trainer)
    trained = [t for t, _ in sorted(trainer_tok.get_vocab().items(), key=lambda kv: kv[1])]
    if style == "legacy":
        specials, unk, bos, eos = ["<unk>", "<s>", "</s>"], "<unk>", "<s>", "</s>"
    else:
        specials, unk, bos, eos = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"], "<unk>", "<bos>", "<eos>"
    vocab: dict[str, int] = {}
    for s in specials:
        vocab[s] = len(vocab)
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    pieces = set()
    for t in trained:
        if t not in vocab:
            vocab[t] = len(vocab)
            pieces.add(t)
    if style == "gemma":  # Gemma spells runs of spaces as pieces "▁▁", "▁▁▁", ...
        for n in range(2, 6):
            vocab[SPACE * n] = len(vocab)
            pieces.add(SPACE * n)
    merges = complete_merges(vocab, pieces)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token=unk, byte_fallback=True, fuse_unk=True))
    tok.add_special_tokens(specials)
    if style == "legacy":
        tok.normalizer = normalizers.Sequence([normalizers.Prepend(SPACE), normalizers.Replace(" ", SPACE)])
        tok.decoder = decoders.Sequence([decoders.Replace(SPACE, " "), decoders.ByteFallback(), decoders.Fuse(),
                                         decoders.Strip(" ", 1, 0)])
    else:
        tok.normalizer = normalizers.Replace(" ", SPACE)
        tok.pre_tokenizer = pre_tokenizers.Split(" ", behavior="merged_with_previous", invert=False)
        tok.decoder = decoders.Sequence([decoders.Replace(SPACE, " "), decoders.ByteFallback(), decoders.Fuse()])
    tok.post_processor = processors.TemplateProcessing(single=f"{bos} $A", special_tokens=[(bos, vocab[bos])])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token=eos, unk_token=unk,
                                   pad_token=specials[0] if style == "gemma" else None)


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------

def randomise(model, gemma_norms: bool, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                lo, hi = (-0.5, 0.5) if gemma_norms else (0.5, 1.5)
                p.copy_(torch.rand(p.shape, generator=g) * (hi - lo) + lo)
            elif name.endswith(".bias"):
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
            elif "embed_tokens" in name:
                p.copy_(torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) / p.shape[-1] ** 0.5)


COMMON = dict(hidden_size=64, intermediate_size=128, num_attention_heads=4, num_key_value_heads=2,
              max_position_embeddings=512, rms_norm_eps=1e-6)


def build(name: str):
    """(model, tokenizer, dtype, max_shard_size)."""
    if name == "llama":
        tok = byte_level_tokenizer(LLAMA3_REGEX, "<|begin_of_text|>")
        tok.chat_template = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
                             "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
        cfg = LlamaConfig(**COMMON, num_hidden_layers=2, vocab_size=len(tok), tie_word_embeddings=False,
                          rope_scaling={"rope_type": "linear", "factor": 2.0}, rope_theta=50000.0,
                          bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
        return LlamaForCausalLM(cfg), tok, torch.bfloat16, "40KB"
    if name == "mistral":
        tok = spm_tokenizer("legacy")
        cfg = MistralConfig(**COMMON, num_hidden_layers=2, vocab_size=len(tok), sliding_window=8, head_dim=16,
                            tie_word_embeddings=False, bos_token_id=1, eos_token_id=2)
        return MistralForCausalLM(cfg), tok, torch.float32, None
    if name in ("qwen2", "qwen3"):
        tok = byte_level_tokenizer(QWEN2_REGEX, None)
        if name == "qwen2":
            cfg = Qwen2Config(**COMMON, num_hidden_layers=2, vocab_size=len(tok), tie_word_embeddings=True,
                              rope_theta=1000000.0, eos_token_id=tok.eos_token_id)
            return Qwen2ForCausalLM(cfg), tok, torch.float32, None
        cfg = Qwen3Config(**COMMON, num_hidden_layers=2, vocab_size=len(tok), head_dim=32, tie_word_embeddings=False,
                          rope_theta=1000000.0, eos_token_id=tok.eos_token_id)
        return Qwen3ForCausalLM(cfg), tok, torch.float16, None
    if name == "gemma3":
        tok = spm_tokenizer("gemma")
        cfg = Gemma3TextConfig(**COMMON, num_hidden_layers=3, head_dim=16, vocab_size=len(tok), sliding_window=8,
                               layer_types=["sliding_attention", "sliding_attention", "full_attention"],
                               query_pre_attn_scalar=24, final_logit_softcapping=30.0,
                               bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=0)
        return Gemma3ForCausalLM(cfg), tok, torch.bfloat16, None
    raise ValueError(name)


@torch.no_grad()
def reference(out: Path, tok) -> dict:
    model = AutoModelForCausalLM.from_pretrained(str(out), dtype=torch.float32, attn_implementation="eager")
    model.eval()
    hf_tok = AutoTokenizer.from_pretrained(str(out))
    ids = hf_tok(PROMPT).input_ids
    check(ids == tok(PROMPT).input_ids, "reloaded tokenizer disagrees with the one saved")
    check(len(ids) >= 40, f"prompt has only {len(ids)} tokens")
    logits = model(torch.tensor([ids])).logits[0].float()
    top = torch.topk(logits, TOP_K, dim=-1)
    specials = BYTE_LEVEL_SPECIAL_TEXTS if "<|im_end|>" in hf_tok.get_vocab() else SPM_SPECIAL_TEXTS
    cases = [{"text": t, "ids_plain": hf_tok(t, add_special_tokens=False).input_ids,
              "ids_special": hf_tok(t, add_special_tokens=True).input_ids} for t in TEXTS + specials]
    return {
        "generator": f"transformers {transformers.__version__}, torch {torch.__version__}, fp32 eager",
        "architecture": type(model).__name__,
        "prompt": PROMPT,
        "ids": ids,
        "top_k": TOP_K,
        "top_ids": top.indices.tolist(),
        "top_logits": [[round(v, 6) for v in row] for row in top.values.tolist()],
        "tokenizer_cases": cases,
    }


def write_reference(doc: dict, path: Path) -> None:
    row = lambda v: json.dumps(v, ensure_ascii=False, separators=(",", ":"))  # noqa: E731
    lines = ["{"]
    for key in ("generator", "architecture", "prompt", "ids", "top_k"):
        lines.append(f"  {json.dumps(key)}: {row(doc[key])},")
    for key in ("top_ids", "top_logits"):
        lines.append(f'  "{key}": [\n' + ",\n".join("    " + row(r) for r in doc[key]) + "\n  ],")
    lines.append('  "tokenizer_cases": [\n' + ",\n".join("    " + row(c) for c in doc["tokenizer_cases"]) + "\n  ]")
    lines.append("}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    json.loads(path.read_text(encoding="utf-8"))


def minify_json(path: Path) -> None:
    doc = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps(doc, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")


def make(name: str, out_dir: Path, seed: int) -> None:
    torch.manual_seed(seed)
    model, tok, dtype, shard = build(name)
    randomise(model, gemma_norms=name == "gemma3", seed=seed)
    out = out_dir / name
    shutil.rmtree(out, ignore_errors=True)
    model.to(dtype).save_pretrained(str(out), max_shard_size=shard or "50MB")
    tok.save_pretrained(str(out))
    if name == "llama":
        GenerationConfig(do_sample=True, temperature=0.7, top_p=0.9, top_k=40, repetition_penalty=1.1,
                         bos_token_id=tok.bos_token_id,
                         eos_token_id=[tok.eos_token_id, tok.convert_tokens_to_ids("<|endoftext|>")]).save_pretrained(str(out))
    minify_json(out / "tokenizer.json")
    for extra in ("special_tokens_map.json",):
        (out / extra).unlink(missing_ok=True)
    doc = reference(out, tok)
    write_reference(doc, out / "reference.json")
    files = sorted(p.name for p in out.iterdir())
    size = sum(p.stat().st_size for p in out.iterdir())
    print(f"  {name}: {len(doc['ids'])} prompt tokens, vocab {len(tok)}, {size / 1024:.0f} KiB: {', '.join(files)}")


def make_smollm2_tokenizer(models_dir: Path, out_dir: Path) -> None:
    gguf = "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not (models_dir / gguf).is_file():
        print(f"  smollm2-tokenizer: {models_dir / gguf} missing, skipped")
        return
    tok = AutoTokenizer.from_pretrained(str(models_dir), gguf_file=gguf)
    tok.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
    ])
    out = out_dir / "smollm2-tokenizer"
    shutil.rmtree(out, ignore_errors=True)
    tok.save_pretrained(str(out))
    for extra in ("special_tokens_map.json", "chat_template.jinja"):
        (out / extra).unlink(missing_ok=True)
    minify_json(out / "tokenizer.json")
    size = sum(p.stat().st_size for p in out.iterdir())
    print(f"  smollm2-tokenizer: {size / 1024:.0f} KiB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out-dir", type=Path, default=REPO / "tests" / "fixtures" / "hf")
    ap.add_argument("--models-dir", type=Path, default=REPO / "models")
    ap.add_argument("--only", action="append")
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    names = ["llama", "mistral", "qwen2", "qwen3", "gemma3"]
    for i, name in enumerate(names):
        if args.only and name not in args.only:
            continue
        make(name, args.out_dir, seed=1000 + i)
    if not args.only or "smollm2-tokenizer" in args.only:
        make_smollm2_tokenizer(args.models_dir, args.out_dir)
    total = sum(p.stat().st_size for p in args.out_dir.rglob("*") if p.is_file())
    print(f"total {total / 1024:.0f} KiB in {args.out_dir}")


if __name__ == "__main__":
    main()
