#!/usr/bin/env python3
"""Writes the committed fuzz seed corpora (small files the project makes).

tests/fuzz/corpus/gguf/: tiny GGUF files (a byte-level BPE vocab, a SentencePiece-style
vocab, a 1-layer llama-shaped model with quantized tensors) written with the `gguf`
package (pip install gguf numpy). tests/fuzz/corpus/text/: varied text for tokenize_fuzz.
The Hugging Face corpora (safetensors/, hf_config/, tokenizer_json/, openai/, output/)
are small synthetic files plus copies of the fixtures in tests/fixtures/hf/.
Regenerate: python3 scripts/make_fuzz_seeds.py
"""
from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import numpy as np
import gguf

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fuzz" / "corpus"
HF = ROOT / "tests" / "fixtures" / "hf"


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


def safetensors_bytes(tensors: dict, metadata: dict | None = None) -> bytes:
    """A .safetensors image: name -> numpy array (or (dtype name, shape, raw bytes))."""
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    names = {np.float32: "F32", np.float16: "F16", np.int64: "I64", np.uint8: "U8", np.int8: "I8", np.bool_: "BOOL"}
    for name, t in tensors.items():
        dtype, shape, raw = t if isinstance(t, tuple) else (names[t.dtype.type], list(t.shape), t.tobytes())
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def copy_fixtures(out: Path, file_name: str, max_bytes: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for src in sorted(HF.glob(f"*/{file_name}")):
        if src.stat().st_size <= max_bytes:
            shutil.copyfile(src, out / f"{src.parent.name}-{file_name}")


def safetensors_seeds(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    seeds = {
        "empty": safetensors_bytes({}),
        "metadata": safetensors_bytes({"w": np.ones((2, 3), np.float32)}, {"format": "pt", "note": "x"}),
        "mixed": safetensors_bytes({"a.weight": rng.standard_normal((4, 8)).astype(np.float16),
                                    "b.bias": np.arange(5, dtype=np.int64), "c": np.zeros((3, 1, 2), np.uint8),
                                    "flag": np.array([True, False]), "scalar": np.array(3.5, np.float32)}),
        "bf16_fp8": safetensors_bytes({"w_bf16": ("BF16", [2, 4], bytes(16)), "w_fp8": ("F8_E4M3", [4, 4], bytes(16)),
                                       "s": ("F8_E8M0", [2], bytes(2)), "zero": ("F32", [0, 7], b"")}),
        "nvfp4": safetensors_bytes({"l.weight_packed": ("U8", [4, 8], bytes(32)),
                                    "l.weight_scale": ("F8_E4M3", [4, 1], bytes(4)),
                                    "l.weight_global_scale": ("F32", [1], struct.pack("<f", 448.0))}),
    }
    for name, data in seeds.items():
        (out / f"{name}.safetensors").write_bytes(data)
    for src in sorted(HF.glob("*/*.safetensors")):
        if src.stat().st_size <= 32 << 10:
            shutil.copyfile(src, out / f"{src.parent.name}-{src.name}")
    copy_fixtures(out, "model.safetensors.index.json", max_bytes=64 << 10)


def hf_config_seeds(out: Path) -> None:
    for name in ("config.json", "generation_config.json", "tokenizer_config.json"):
        copy_fixtures(out, name, max_bytes=64 << 10)
    qwen3 = json.loads((HF / "qwen3" / "config.json").read_text())
    compressed = dict(qwen3, quantization_config={
        "quant_method": "compressed-tensors", "format": "nvfp4-pack-quantized", "ignore": ["lm_head"],
        "config_groups": {"group_0": {"format": "nvfp4-pack-quantized", "targets": ["Linear"]}}})
    modelopt = dict(qwen3, quantization_config={"quant_method": "modelopt", "quant_algo": "NVFP4_SVD",
                                                "exclude_modules": ["lm_head"]})
    other = dict(qwen3, quantization_config={"quant_method": "gptq", "bits": 4})
    hf_quant = {"producer": {"name": "modelopt"}, "quantization": {"quant_algo": "NVFP4", "exclude_modules": ["x"]}}
    extras = {"compressed_tensors": compressed, "modelopt": modelopt, "gptq": other, "hf_quant_config": hf_quant,
              "generation_list_eos": {"do_sample": True, "temperature": 0.6, "top_k": 20, "eos_token_id": [1, 2]},
              "tokenizer_template": {"bos_token": {"content": "<s>", "special": True}, "add_bos_token": True,
                                     "chat_template": [{"name": "default", "template": "{{ messages }}"}]}}
    for name, doc in extras.items():
        (out / f"{name}.json").write_text(json.dumps(doc, indent=1))


def openai_seeds(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    user = {"role": "user", "content": "Hi"}
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"a\": 1}"}}
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    bodies = [
        {"model": "m", "messages": [user]},
        {"model": "m", "messages": [{"role": "system", "content": "Be brief."}, user], "n": 2, "max_tokens": 8,
         "temperature": 0.5, "top_p": 0.9, "top_k": 5, "min_p": 0.1, "seed": 7, "stop": ["\n", "END"],
         "logit_bias": {"15": -100}, "logprobs": True, "top_logprobs": 2, "stream": True,
         "stream_options": {"include_usage": True}, "presence_penalty": 0.5, "frequency_penalty": -0.5},
        {"model": "m", "messages": [user, {"role": "assistant", "content": None, "tool_calls": [call]},
                                    {"role": "tool", "tool_call_id": "c1", "content": "42"}],
         "tools": [tool], "tool_choice": "auto", "chat_template_kwargs": {"enable_thinking": False}},
        {"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "a"},
                                                                 {"type": "text", "text": "b"}]},
                                    {"role": "assistant", "content": "x", "reasoning_content": "think"}]},
        {"model": "m", "prompt": "Once upon", "echo": True, "max_tokens": 4, "stop": "."},
        {"model": "m", "prompt": [1, 2, 3], "ignore_eos": True},
    ]
    for i, body in enumerate(bodies):
        (out / f"request{i:02d}.json").write_text(json.dumps(body))


def output_seeds(out: Path) -> None:
    """First byte: reasoning (x % 3) x tools (x / 3 % 4) x starts_in_reasoning (x / 12 % 2); second: split seed."""
    out.mkdir(parents=True, exist_ok=True)
    texts = {
        0: "Plain answer.\n",
        1: "<think>\nreasoning here\n</think>\n\nThe answer is 4.",
        13: "still thinking</think>answer",
        2: "<|channel>thought\nhmm<channel|>Final text",
        3: '<tool_call>\n{"name": "f", "arguments": {"a": 1}}\n</tool_call>',
        4: '<think>x</think><tool_call>{"name": "g", "arguments": {}}</tool_call> tail <tool_call>bad</tool_call>',
        6: '{"name": "f", "parameters": {"x": [1, 2]}}',
        7: 'before <|python_tag|>{"name": "f", "parameters": {}}',
        9: '[TOOL_CALLS][{"name": "f", "arguments": {"a": "b"}, "id": "abc123def"}]',
        10: "<think>r</think>[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Paris\"}",
        5: "<|channel>thought\n<tool_call>{}</tool_call><channel|><tool_call>{\"name\":1}</tool_call>",
    }
    for i, (fmt, text) in enumerate(texts.items()):
        (out / f"seed{i:02d}.bin").write_bytes(bytes([fmt, 17 * i + 3]) + text.encode())


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
    safetensors_seeds(OUT / "safetensors")
    hf_config_seeds(OUT / "hf_config")
    copy_fixtures(OUT / "tokenizer_json", "tokenizer.json", max_bytes=64 << 10)
    openai_seeds(OUT / "openai")
    output_seeds(OUT / "output")


if __name__ == "__main__":
    main()
