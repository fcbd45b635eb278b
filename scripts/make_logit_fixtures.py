#!/usr/bin/env python3
"""Independent reference logits for ember's default models, from Hugging Face transformers (fp32).

Regenerate (CPU is enough, 2-3 minutes; needs the models, see scripts/fetch-models.sh, and
`pip install transformers torch gguf accelerate` -- transformers refuses GGUF without accelerate):

    scripts/fetch-models.sh all
    python3 scripts/make_logit_fixtures.py            # models from $EMBER_MODELS_DIR or <repo>/models
    python3 scripts/make_logit_fixtures.py --models-dir DIR --out-dir tests/fixtures/logits --only gemma3

What it does, per model: loads the GGUF with
`AutoModelForCausalLM.from_pretrained(models_dir, gguf_file=NAME, dtype=torch.float32)`; transformers
dequantizes every GGUF tensor to fp32 with its own dequantizer, so the weights equal what ember
reads. The tokenizer is built from the same GGUF. For each of the fixed PROMPTS below it runs one
forward pass over the whole prompt and writes, per position, the 20 largest logits and their ids
(rounded to 5 decimals), plus a 32-token greedy continuation of prompt 0 from `generate(do_sample=False)`.
Output: tests/fixtures/logits/{smollm2,gemma3}.json (schema in docs/models.md).

Checks this script makes on the reference itself (it stops if one fails):
  * every F32 norm weight in the model equals the raw GGUF value minus 1 for Gemma 3 (GGUF stores
    the HF weight + 1; transformers' Gemma TensorProcessor subtracts 1 on load and Gemma3RMSNorm adds
    it back at run time, so the +1 is applied exactly once) and equals the raw value for SmolLM2;
    Gemma3RMSNorm is also run on a random vector and compared with x/rms(x) * raw_gguf_weight;
  * a few quantized tensors (Q4_1, Q8_0, Q5_0, Q4_K, Q6_K) equal gguf-py's dequantization of the
    raw GGUF data, i.e. the fp32 weights are the GGUF's weights;
  * Gemma 3 really is built as gemma3: Gemma3ForCausalLM, sliding window 512, layer pattern
    5 sliding : 1 full, query_pre_attn_scalar = 256 (= head_dim), rope theta 10000 (sliding) /
    1000000 (full), embedding scaled by sqrt(hidden_size), no logit soft-capping;
  * the chat prompts equal what `apply_chat_template` renders from the GGUF's template (SmolLM2;
    the Gemma GGUF has no template, so that prompt is written by hand in Gemma's turn format);
  * Gemma's long prompt (690 tokens) is longer than the 512-token sliding window, and the window
    really acts in the reference: with the window lifted, positions 0..511 give identical logits and
    positions >= 512 differ (so position p attends to keys p-511..p in sliding layers);
  * the greedy continuation is, step by step, the argmax of a full (no KV cache) forward pass over
    prompt + continuation (up to near-ties), and it is printed so a human can see it is sensible.

Workarounds (transformers 5.23, gguf 0.19):
  * SmolLM2's GGUF says `tokenizer.ggml.pre = smollm`, which transformers' GGUF tokenizer builder
    does not know, so it falls back to the plain GPT-2 byte-level pre-tokenizer. llama.cpp and the
    original tokenizer.json split every digit first (`\\p{N}` / Digits(individual_digits=True)).
    We set that pre-tokenizer explicitly. (For this vocabulary, which has no multi-digit tokens, the
    ids come out the same either way; the script checks and reports it.)
  * Nothing else needed: config, weights and the Gemma 3 sentencepiece tokenizer load as they should.
    The Gemma tokenizer's merges are rebuilt by transformers from vocabulary order; the GGUF scores
    are strictly decreasing in that order, so this agrees with llama.cpp's score-based SPM merging.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import torch
import transformers
from gguf import GGUFReader
from gguf.quants import dequantize
from transformers import AutoModelForCausalLM, AutoTokenizer

TOP_K = 20
GREEDY_N = 32
REPO_ROOT = Path(__file__).resolve().parent.parent

# ---------------------------------------------------------------------------------------------
# Prompts (fixed; changing them changes the fixtures). Each is >= 64 tokens and mixes in
# accented Latin, CJK and emoji. Prompt 0 of each model seeds the greedy run.
# ---------------------------------------------------------------------------------------------

SMOLLM2_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
SMOLLM2_USER = (
    "Give me three tips for staying healthy during a busy week at work. I often skip breakfast, "
    "drink too much coffee (☕☕☕) and sleep badly. My colleague René says walking helps. "
    "What do you think?"
)
SMOLLM2_PROMPTS = [
    f"<|im_start|>system\n{SMOLLM2_SYSTEM}<|im_end|>\n"
    f"<|im_start|>user\n{SMOLLM2_USER}<|im_end|>\n<|im_start|>assistant\n",
    "Café au lait, naïve façade, Zoë's jalapeño piñata and the Straße in Köln: Ünïcödé text is "
    "everywhere. 東京は日本の首都です。北京是中国的首都。서울은 한국의 수도입니다. "
    "Emoji too 🙂🚀🎉 and families 👩‍👩‍👧 or thumbs 👍🏽! Prices: 2024 €, 3.14159 ¥, 1,000,000 ₹.\n"
    "\tTabs,   runs of spaces,\n\nand blank lines end it.",
    "def fibonacci(n: int) -> list[int]:\n"
    '    """Return the first n Fibonacci numbers."""\n'
    "    seq = [0, 1]\n"
    "    while len(seq) < n:\n"
    "        seq.append(seq[-1] + seq[-2])\n"
    "    return seq[:n]\n\n"
    "# The ratio of consecutive terms approaches the golden ratio φ ≈ 1.618.\n"
    "print(fibonacci(10))  # → [0, 1, 1, 2, 3, 5, 8, 13, 21, 34]\n",
]

# Gemma 3 270M here is the *pretrained* (base) model, not the instruction-tuned one: the GGUF has no
# chat template and, given turn markers, it echoes the user text. So prompt 0 (which seeds the greedy
# run) is plain English prose; the turn-format prompt is prompt 1, for logits only.
GEMMA3_STORY = (
    "Zoë had lived in the little harbour town of Saint-Malo all her life. Every morning she walked "
    "past the bakery, where Madame Lefèvre sold warm croissants and pains au chocolat 🥐, and down "
    "to the old stone pier to watch the fishing boats come in. One grey morning in November, she "
    "noticed something strange floating in the water:"
)
GEMMA3_USER = (
    "My friend José just moved from Madrid to Kyoto (京都) and feels a bit lonely 😔. Write him a "
    "short, warm message in English that encourages him to explore the city and make new friends. "
    "Mention the temples, the food and the autumn leaves, and keep it under one hundred words please."
)
# Long English text with a multilingual postcard in it (> 512 tokens with BOS) so the sliding-window layers (window 512) really drop
# keys in the reference; ember must reproduce that at the last ~100 positions.
GEMMA3_LONG = (
    "The Lighthouse Keepers\n\n"
    "For more than two centuries, the lighthouses along the northern coast were kept by families "
    "who lived in small stone cottages at the foot of each tower. The work was simple to describe "
    "and hard to do: every evening, before sunset, the keeper climbed the spiral staircase, trimmed "
    "the wicks, polished the great glass lens, and lit the lamp. Through the night, someone had to "
    "stay awake to wind the clockwork that turned the lens, to watch for ships in trouble, and to "
    "write in the logbook the state of the wind, the sea and the sky.\n\n"
    "The logbooks that survive tell a quiet story. Most nights nothing happened. The keeper noted "
    "\"wind light from the south-west, sea calm, visibility good\" and went back to his tea. But "
    "sometimes the entries change in tone. In the winter of one hard year, a keeper wrote that the "
    "storm had broken three panes of the lantern room, that his son had held a blanket against the "
    "opening for four hours while he repaired the frame, and that the light had not gone out once. "
    "He did not write that he was proud, but the careful handwriting of the next entry suggests it.\n\n"
    "Children grew up in these places knowing the tides better than the alphabet. They learned to "
    "read from the almanac and to count by the flashes of the neighbouring lights across the bay. "
    "Supplies came by boat once a month when the weather allowed, and a letter could take weeks. "
    "Visitors were rare, so every arrival was an event: a schoolteacher, an inspector with his "
    "checklist, or a painter who wanted to capture the particular blue of the water at dawn.\n\n"
    "A postcard pinned inside one cottage door reads: \"Grüße aus Zürich! Ça va très bien, merci. "
    "¿Dónde está el faro? Łódź, Kraków, Ærøskøbing. 我喜欢灯塔。ひらがなとカタカナ、한국어도 조금. "
    "😀🌍🔥💯 👨‍👩‍👧‍👦 🇫🇷 👋🏿 12345 3.14159\"\n"
    "    (indented note\twith a tab,   three spaces,\n\n\nand three newlines)\n\n"
    "Over time, the lamps changed. Whale oil gave way to colza oil, then to paraffin, then to "
    "electricity. Each change made the light brighter and the keeper's work a little easier, until "
    "at last the work was no longer needed at all. Automatic lamps, powered by the sun and checked "
    "from far away, now turn without anyone climbing the stairs. The cottages became holiday homes "
    "and small museums, and the logbooks went into archives where historians read them with care.\n\n"
    "Yet people still walk out to the old towers on summer evenings to watch the first flash appear "
    "as the sky darkens. There is something in the steady rhythm of the light that feels like a "
    "promise kept: someone, or something, is watching over the sea. The keepers are gone, but the "
    "habit of looking after strangers whom you will never meet remains the best part of their "
    "story, and perhaps the reason it is still told.\n\n"
    "Questions for discussion: Why do you think the keepers wrote so little about their feelings? "
    "What other kinds of work have disappeared because of automation, and what did we lose or gain "
    "when they did? If you could spend one night in a lighthouse, what would you want to see?"
)
GEMMA3_PROMPTS = [
    GEMMA3_STORY,
    f"<start_of_turn>user\n{GEMMA3_USER}<end_of_turn>\n<start_of_turn>model\n",
    GEMMA3_LONG,
]

MODELS = {
    "smollm2": {"file": "SmolLM2-135M-Instruct.Q4_1.gguf", "prompts": SMOLLM2_PROMPTS},
    "gemma3": {"file": "gemma-3-270m-q4_k_m.gguf", "prompts": GEMMA3_PROMPTS},
}


def fail(msg: str) -> None:
    print(f"make_logit_fixtures: CHECK FAILED: {msg}", file=sys.stderr)
    sys.exit(1)


def check(cond: bool, msg: str) -> None:
    if not cond:
        fail(msg)


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------

def load_tokenizer(models_dir: Path, name: str, gguf_file: str):
    tok = AutoTokenizer.from_pretrained(str(models_dir), gguf_file=gguf_file)
    if name == "smollm2":
        from tokenizers import pre_tokenizers

        original = tok.backend_tokenizer.pre_tokenizer
        fixed = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Digits(individual_digits=True),
                pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
            ]
        )
        before = [tok(p).input_ids for p in SMOLLM2_PROMPTS]
        tok.backend_tokenizer.pre_tokenizer = fixed
        after = [tok(p).input_ids for p in SMOLLM2_PROMPTS]
        print(f"  smollm2 pre-tokenizer: {original} -> Digits(individual)+ByteLevel; "
              f"prompt ids {'unchanged' if before == after else 'CHANGED'} by the fix")
    return tok


def load_model(models_dir: Path, gguf_file: str):
    model = AutoModelForCausalLM.from_pretrained(
        str(models_dir), gguf_file=gguf_file, dtype=torch.float32, attn_implementation="eager"
    )
    model.eval()
    check(all(p.dtype == torch.float32 for p in model.parameters()), "model parameters are not all fp32")
    return model


# ---------------------------------------------------------------------------------------------
# Checks on the reference
# ---------------------------------------------------------------------------------------------

def gguf_tensors(gguf_path: Path) -> dict:
    return {t.name: t for t in GGUFReader(str(gguf_path)).tensors}


def raw_f32(t) -> np.ndarray:
    return dequantize(t.data, t.tensor_type).astype(np.float32).reshape(-1)


def check_norms(name: str, model, tensors: dict) -> None:
    """Every 1-D norm weight must be raw_gguf - 1 (Gemma) or raw_gguf (llama)."""
    offset = 1.0 if name == "gemma3" else 0.0
    hf = {
        "output_norm.weight": model.model.norm.weight,
    }
    per_layer = {
        "attn_norm": "input_layernorm",
        "ffn_norm": "post_attention_layernorm" if name == "smollm2" else "pre_feedforward_layernorm",
    }
    if name == "gemma3":
        per_layer |= {
            "post_attention_norm": "post_attention_layernorm",
            "post_ffw_norm": "post_feedforward_layernorm",
            "attn_q_norm": "self_attn.q_norm",
            "attn_k_norm": "self_attn.k_norm",
        }
    for il, layer in enumerate(model.model.layers):
        for g, h in per_layer.items():
            hf[f"blk.{il}.{g}.weight"] = layer.get_submodule(h).weight
    n_norm_tensors = sum(1 for k in tensors if k.endswith("norm.weight"))
    check(n_norm_tensors == len(hf), f"{name}: {n_norm_tensors} norm tensors in GGUF, {len(hf)} mapped")
    for gname, w in hf.items():
        raw = raw_f32(tensors[gname])
        got = w.detach().numpy().reshape(-1)
        err = np.abs(got + offset - raw).max()
        check(err < 1e-6, f"{name}: {gname}: HF weight + {offset} differs from GGUF by {err}")
    print(f"  norms: all {len(hf)} norm weights == GGUF value - {offset:g} (exact)")
    if name == "gemma3":
        norm = model.model.layers[0].input_layernorm
        x = torch.randn(3, norm.weight.shape[0], dtype=torch.float32)
        raw = torch.from_numpy(raw_f32(tensors["blk.0.attn_norm.weight"]))
        eps = model.config.rms_norm_eps
        want = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * raw
        err = (norm(x) - want).abs().max().item()
        check(err < 1e-4, f"gemma3: Gemma3RMSNorm(x) != x/rms(x) * gguf_weight (err {err}); +1 applied twice?")
        print(f"  Gemma3RMSNorm(x) == x/rms(x) * raw GGUF weight (max err {err:.2e}): +1 applied once")


def check_weights(name: str, model, tensors: dict) -> None:
    """Quantized tensors: HF fp32 weight == gguf-py dequantization of the GGUF bytes."""
    pairs = [("token_embd.weight", model.model.embed_tokens.weight)]
    for il in (0, len(model.model.layers) - 1):
        layer = model.model.layers[il]
        pairs += [
            (f"blk.{il}.ffn_down.weight", layer.mlp.down_proj.weight),
            (f"blk.{il}.ffn_gate.weight", layer.mlp.gate_proj.weight),
            (f"blk.{il}.attn_v.weight", layer.self_attn.v_proj.weight),
            (f"blk.{il}.attn_output.weight", layer.self_attn.o_proj.weight),
        ]
        if name == "gemma3":  # llama q/k are row-permuted by the GGUF converter; gemma's are not
            pairs.append((f"blk.{il}.attn_q.weight", layer.self_attn.q_proj.weight))
    kinds = set()
    for gname, w in pairs:
        t = tensors[gname]
        raw = raw_f32(t)
        got = w.detach().numpy().reshape(-1)
        check(raw.shape == got.shape, f"{name}: {gname} shape {raw.shape} vs HF {got.shape}")
        err = np.abs(got - raw).max()
        check(err == 0.0, f"{name}: {gname} ({t.tensor_type.name}) differs from gguf-py dequant by {err}")
        kinds.add(t.tensor_type.name)
    print(f"  weights: {len(pairs)} tensors ({', '.join(sorted(kinds))}) bit-identical to gguf-py dequantization")


def check_gemma3_arch(model) -> None:
    c = model.config
    check(type(model).__name__ == "Gemma3ForCausalLM", f"model class {type(model).__name__}")
    check(c.model_type == "gemma3_text", f"model_type {c.model_type}")
    check(c.sliding_window == 512, f"sliding_window {c.sliding_window}")
    want_types = ["full_attention" if (i + 1) % 6 == 0 else "sliding_attention" for i in range(c.num_hidden_layers)]
    check(list(c.layer_types) == want_types, f"layer_types {c.layer_types}")
    check(c.query_pre_attn_scalar == 256 == c.head_dim, f"query_pre_attn_scalar {c.query_pre_attn_scalar}")
    check(abs(model.model.layers[0].self_attn.scaling - 256 ** -0.5) < 1e-12, "attention scaling != 1/sqrt(256)")
    rp = c.rope_parameters
    check(rp["sliding_attention"]["rope_theta"] == 10000.0, f"local rope {rp}")
    check(rp["full_attention"]["rope_theta"] == 1000000.0, f"global rope {rp}")
    check(all(v.get("rope_type", "default") == "default" for v in rp.values()), f"rope scaling {rp}")
    scale = float(model.model.embed_tokens.embed_scale)
    check(abs(scale - math.sqrt(c.hidden_size)) < 1e-5, f"embed_scale {scale}")
    check(c.final_logit_softcapping is None and c.attn_logit_softcapping is None, "soft-capping set")
    check(c.hidden_activation == "gelu_pytorch_tanh", f"activation {c.hidden_activation}")
    check(c.tie_word_embeddings, "lm_head not tied")
    print(f"  gemma3 arch ok: window 512, 5 sliding:1 full, qpas 256, rope 1e4/1e6, embed_scale {scale:.6f}")


@torch.no_grad()
def check_sliding_window(model, ids: list[int]) -> None:
    window = model.config.sliding_window
    check(len(ids) > window + 32, f"long prompt has {len(ids)} tokens, not > window + 32")
    x = torch.tensor([ids])
    with_window = model(x).logits[0]
    layers = [l.self_attn for l in model.model.layers if getattr(l.self_attn, "sliding_window", None)]
    check(len(layers) == 15, f"{len(layers)} layers with a sliding window, want 15")
    model.config.sliding_window = 1 << 30
    for attn in layers:
        attn.sliding_window = 1 << 30
    try:
        without = model(x).logits[0]
    finally:
        model.config.sliding_window = window
        for attn in layers:
            attn.sliding_window = window
    diff = (with_window - without).abs().amax(-1)
    check(float(diff[:window].max()) == 0.0, "lifting the window changed positions < window")
    check(float(diff[window]) > 1e-3, "lifting the window did not change position == window")
    print(f"  sliding window acts: positions < {window} unchanged without it, position {window} moves "
          f"by {float(diff[window]):.3f}, max {float(diff.max()):.2f}")


# ---------------------------------------------------------------------------------------------
# Fixture generation
# ---------------------------------------------------------------------------------------------

@torch.no_grad()
def prompt_entry(model, tok, text: str) -> dict:
    ids = tok(text).input_ids
    check(len(ids) >= 64, f"prompt has only {len(ids)} tokens: {text[:40]!r}")
    logits = model(torch.tensor([ids])).logits[0].float()  # [n_tokens, n_vocab]
    top = torch.topk(logits, TOP_K, dim=-1)
    return {
        "text": text,
        "ids": ids,
        "top_ids": top.indices.tolist(),
        "top_logits": [[round(v, 5) for v in row] for row in top.values.tolist()],
    }


@torch.no_grad()
def greedy_entry(model, tok, prompt_ids: list[int]) -> dict:
    inp = torch.tensor([prompt_ids])
    out = model.generate(
        inp, attention_mask=torch.ones_like(inp), do_sample=False, max_new_tokens=GREEDY_N,
        min_new_tokens=0, num_beams=1, top_k=None, top_p=None, temperature=None,
    )
    new = out[0, len(prompt_ids):].tolist()
    check(len(new) == GREEDY_N, f"greedy run stopped after {len(new)} tokens (EOS); pick another prompt")
    # Cross-check against a full forward pass without KV cache.
    logits = model(torch.tensor([prompt_ids + new])).logits[0]
    for i, t in enumerate(new):
        row = logits[len(prompt_ids) - 1 + i]
        best = int(row.argmax())
        check(best == t or float(row[best] - row[t]) < 1e-3,
              f"greedy token {i}: generate gave {t}, full forward argmax {best}")
    text = tok.decode(new)
    return {"prompt_index": 0, "n": GREEDY_N, "ids": new, "text": text}


def dump(doc: dict, path: Path) -> None:
    """JSON with one line per position, so diffs and sizes stay readable."""
    def row(v):
        return json.dumps(v, ensure_ascii=False, separators=(",", ":"))

    lines = ["{"]
    for key in ("model", "generator", "top_k"):
        lines.append(f"  {json.dumps(key)}: {row(doc[key])},")
    lines.append('  "prompts": [')
    for pi, p in enumerate(doc["prompts"]):
        lines.append("    {")
        lines.append(f'      "text": {row(p["text"])},')
        lines.append(f'      "ids": {row(p["ids"])},')
        for key in ("top_ids", "top_logits"):
            lines.append(f'      "{key}": [')
            lines.append(",\n".join("        " + row(r) for r in p[key]))
            lines.append("      ]" + ("," if key == "top_ids" else ""))
        lines.append("    }" + ("," if pi + 1 < len(doc["prompts"]) else ""))
    lines.append("  ],")
    lines.append(f'  "greedy": {row(doc["greedy"])}')
    lines.append("}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    json.loads(path.read_text(encoding="utf-8"))  # must round-trip


def make(name: str, models_dir: Path, out_dir: Path) -> None:
    spec = MODELS[name]
    gguf_file = spec["file"]
    gguf_path = models_dir / gguf_file
    if not gguf_path.is_file():
        fail(f"{gguf_path} not found; run scripts/fetch-models.sh {name}")
    print(f"== {name}: {gguf_path}")
    tok = load_tokenizer(models_dir, name, gguf_file)
    model = load_model(models_dir, gguf_file)
    print(f"  transformers built {type(model).__name__} with config:\n{model.config.to_json_string()}")

    tensors = gguf_tensors(gguf_path)
    check_norms(name, model, tensors)
    check_weights(name, model, tensors)
    if name == "gemma3":
        check_gemma3_arch(model)
    if name == "smollm2":
        rendered = tok.apply_chat_template(
            [{"role": "user", "content": SMOLLM2_USER}], tokenize=False, add_generation_prompt=True
        )
        check(rendered == SMOLLM2_PROMPTS[0], f"chat template renders {rendered!r}")
        print("  chat prompt == apply_chat_template(GGUF template)")
    else:
        check(tok.chat_template is None, "gemma3 GGUF has a chat template now; compare the prompt with it")

    prompts = []
    for text in spec["prompts"]:
        prompts.append(prompt_entry(model, tok, text))
        print(f"  prompt {len(prompts) - 1}: {len(prompts[-1]['ids'])} tokens")
    if name == "gemma3":
        check_sliding_window(model, prompts[2]["ids"])
    torch.manual_seed(0)
    greedy = greedy_entry(model, tok, prompts[0]["ids"])
    print(f"  greedy continuation of prompt 0: {greedy['text']!r}")

    doc = {
        "model": gguf_file,
        "generator": f"transformers {transformers.__version__}, torch {torch.__version__}, fp32",
        "top_k": TOP_K,
        "prompts": prompts,
        "greedy": greedy,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    dump(doc, path)
    size = path.stat().st_size
    check(size < 400_000, f"{path} is {size} bytes (limit 400 kB)")
    print(f"  wrote {path} ({size} bytes)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models-dir", type=Path,
                    default=Path(os.environ.get("EMBER_MODELS_DIR", REPO_ROOT / "models")))
    ap.add_argument("--out-dir", type=Path, default=REPO_ROOT / "tests" / "fixtures" / "logits")
    ap.add_argument("--only", choices=sorted(MODELS), action="append")
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    for name in args.only or list(MODELS):
        make(name, args.models_dir, args.out_dir)


if __name__ == "__main__":
    main()
