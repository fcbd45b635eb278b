#!/usr/bin/env python3
"""Tiny mixture-of-experts models with reference logits: tests/fixtures/moe/<name>/.

    python3 scripts/make_moe_fixtures.py [--out-dir tests/fixtures/moe]

Needs torch, transformers (5.x), safetensors, gguf (gguf-py), numpy; CPU only, < 1 minute.
Weights are random with fixed seeds; regenerating rewrites every file (commit them together).

Models (random weights, scale 1/sqrt(fan_in) so logits are well separated; norms random):

  name      class                 shape
  qwen3moe  Qwen3MoeForCausalLM   3 layers (layer 1 dense via mlp_only_layers), hidden 64, 8 experts
                                  top-2 width 32, norm_topk_prob, q/k norms, head_dim 16
  mixtral   MixtralForCausalLM    2 layers, hidden 64, 8 experts top-2 width 32
  qwen2moe  Qwen2MoeForCausalLM   2 layers, hidden 64, 8 experts top-2 width 32 (no renormalisation),
                                  shared expert width 64 with a sigmoid gate, q/k/v biases
  gemma4    Gemma4ForCausalLM     3 layers (2 sliding, window 4, head_dim 16, 2 KV heads; 1 full: head_dim 32,
                                  1 KV head, k = v, proportional rope 0.25), dense MLP (96) beside 8 experts
                                  top-2 width 32 (router scale, per-expert scale), layer_scalar, softcap 30.
                                  Fused 3-D experts (as save_pretrained writes them); GGUF variants (arch gemma4,
                                  fused ffn_gate_up_exps, rope_freqs for the proportional rope, no attn_v on the
                                  k = v layer); no NVFP4 variant (the experts are 3-D parameters, not Linears).

Each model directory holds:
  hf/                 config.json + model.safetensors (fp32, as save_pretrained writes it: one tensor
                      per expert) + the qwen2 HF fixture's tokenizer; reference.json
  nvfp4/              the same model in llm-compressor's compressed-tensors nvfp4-pack-quantized
                      layout: every attention projection, dense MLP and expert its own
                      weight_packed / weight_scale (E4M3) / weight_global_scale (a divisor; an
                      expert's gate and up share one, as llm-compressor fuses them); router,
                      embeddings and lm_head stay fp32. reference.json is transformers run on the
                      dequantized weights.
  <model>.f16.gguf    GGUF (arch qwen3moe / llama / qwen2moe), f16 matrices, router f32;
  <model>.q8.gguf     GGUF with Q8_0 matrices and Q4_0 gate/up experts (Q5_0 for mixtral's down).
                      Experts as 3-D `blk.N.ffn_{gate,up,down}_exps.weight` [n_expert][n_ff][n_embd],
                      except mixtral.f16.gguf, which uses the legacy one-tensor-per-expert names
                      `blk.N.ffn_gate.E.weight`. llama-arch q/k rows are permuted for interleaved rope
                      as llama.cpp's converter does. reference_<variant>.json: transformers on the
                      weights dequantized from that file (gguf-py), i.e. exactly the weights ember reads.

reference*.json: {"generator", "prompts": [{"ids": [...], "top_ids": [[TOP_K]...], "top_logits": [...],
"min_route_margin": smallest gap between the k-th and (k+1)-th router probability over all tokens
and layers (near-ties could legitimately route differently)}], "top_k"}.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
import transformers
from gguf import GGMLQuantizationType as Q
from gguf import GGUFWriter, quants
from safetensors.torch import save_file
from transformers import (Gemma4ForCausalLM, Gemma4TextConfig, MixtralConfig, MixtralForCausalLM, Qwen2MoeConfig,
                          Qwen2MoeForCausalLM, Qwen3MoeConfig, Qwen3MoeForCausalLM)

REPO = Path(__file__).resolve().parent.parent
TOKENIZER_DIR = REPO / "tests" / "fixtures" / "hf" / "qwen2"
TOP_K = 8
PROMPT_LENGTHS = (1, 9, 33)
FP4_VALUES = np.array([0, 0.5, 1, 1.5, 2, 3, 4, 6], dtype=np.float32)


def check(cond: bool, msg: str) -> None:
    if not cond:
        print(f"make_moe_fixtures: CHECK FAILED: {msg}", file=sys.stderr)
        sys.exit(1)


COMMON = dict(hidden_size=64, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
              rms_norm_eps=1e-6, vocab_size=512, tie_word_embeddings=False, num_experts_per_tok=2)


def build(name: str):
    if name == "qwen3moe":
        cfg = Qwen3MoeConfig(**COMMON, num_hidden_layers=3, head_dim=16, intermediate_size=64, num_experts=8,
                             moe_intermediate_size=32, norm_topk_prob=True, mlp_only_layers=[1],
                             rope_theta=1000000.0)
        return Qwen3MoeForCausalLM(cfg)
    if name == "mixtral":
        cfg = MixtralConfig(**COMMON, num_hidden_layers=2, intermediate_size=32, num_local_experts=8,
                            rope_theta=1000000.0)
        return MixtralForCausalLM(cfg)
    if name == "qwen2moe":
        cfg = Qwen2MoeConfig(**COMMON, num_hidden_layers=2, intermediate_size=64, num_experts=8,
                             moe_intermediate_size=32, shared_expert_intermediate_size=64, norm_topk_prob=False,
                             rope_theta=1000000.0)
        return Qwen2MoeForCausalLM(cfg)
    if name == "gemma4":
        cfg = Gemma4TextConfig(vocab_size=512, hidden_size=64, intermediate_size=96, num_hidden_layers=3,
                               num_attention_heads=4, num_key_value_heads=2, head_dim=16, global_head_dim=32,
                               num_global_key_value_heads=1, attention_k_eq_v=True, sliding_window=4,
                               layer_types=["sliding_attention", "sliding_attention", "full_attention"],
                               hidden_size_per_layer_input=0, enable_moe_block=True, num_experts=8, top_k_experts=2,
                               moe_intermediate_size=32, final_logit_softcapping=30.0, max_position_embeddings=256,
                               rms_norm_eps=1e-6)
        return Gemma4ForCausalLM(cfg)
    raise ValueError(name)


def randomise(model, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if "norm" in pname or pname.endswith("scale"):  # norms, Gemma 4 router scales
                p.copy_(torch.rand(p.shape, generator=g) + 0.5)
            elif pname.endswith(".bias"):
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
            elif "embed_tokens" in pname:  # Gemma 4 multiplies by sqrt(hidden) and ties lm_head: keep logits small
                p.copy_(torch.randn(p.shape, generator=g) * (0.25 if model.config.model_type == "gemma4_text" else 1.0))
            else:
                p.copy_(torch.randn(p.shape, generator=g) / p.shape[-1] ** 0.5)
        for bname, b in model.named_buffers():
            if bname.endswith("layer_scalar"):  # Gemma 4's per-layer output scale
                b.copy_(torch.rand(b.shape, generator=g) + 0.5)


def prompts(seed: int) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, COMMON["vocab_size"], n).tolist() for n in PROMPT_LENGTHS]


# ---------------------------------------------------------------------------------------------
# Reference logits
# ---------------------------------------------------------------------------------------------

def route_margins(model) -> list:
    """Hooks every router; returns a list that fills with the k-th minus (k+1)-th probability gaps."""
    margins: list[float] = []
    k = getattr(model.config, "num_experts_per_tok", None) or model.config.top_k_experts

    def hook(_module, inputs, output):
        if type(_module).__name__ == "Gemma4TextRouter":  # returns its probabilities first
            probs = output[0].float()
        else:
            x = inputs[0].reshape(-1, inputs[0].shape[-1]).float()
            probs = torch.softmax(x @ _module.weight.float().T, dim=-1)
        top = torch.topk(probs, k + 1, dim=-1).values
        margins.extend((top[:, k - 1] - top[:, k]).tolist())

    for mod_name, mod in model.named_modules():
        if (mod_name.endswith("mlp.gate") and hasattr(mod, "weight") and mod.weight.dim() == 2 or
                type(mod).__name__ == "Gemma4TextRouter"):
            mod.register_forward_hook(hook)
    return margins


@torch.no_grad()
def reference(model, ids_list: list[list[int]], label: str) -> dict:
    model.eval()
    margins = route_margins(model)
    out = []
    for ids in ids_list:
        margins.clear()
        logits = model(torch.tensor([ids])).logits[0].float()
        top = torch.topk(logits, TOP_K, dim=-1)
        out.append({"ids": ids, "top_ids": top.indices.tolist(),
                    "top_logits": [[round(v, 6) for v in row] for row in top.values.tolist()],
                    "min_route_margin": round(min(margins), 8) if margins else None})
    return {"generator": f"transformers {transformers.__version__}, torch {torch.__version__}, fp32 eager; {label}",
            "architecture": type(model).__name__, "top_k": TOP_K, "prompts": out}


def write_json(doc: dict, path: Path) -> None:
    path.write_text(json.dumps(doc, separators=(",", ":")) + "\n", encoding="utf-8")


def to_module_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Saved names (one tensor per expert) -> transformers 5's in-memory fused 3-D expert parameters."""
    out, experts = {}, {}
    for k, t in state.items():
        k = k.replace(".block_sparse_moe.", ".mlp.")
        if ".mlp.experts." in k:
            prefix, rest = k.split(".mlp.experts.")
            e, proj = rest.split(".")[:2]
            proj = {"w1": "gate_proj", "w3": "up_proj", "w2": "down_proj"}.get(proj, proj)
            experts.setdefault(prefix, {}).setdefault(proj, {})[int(e)] = t
        else:
            out[k] = t
    for prefix, projs in experts.items():
        stack = {p: torch.stack([v[e] for e in sorted(v)]) for p, v in projs.items()}
        out[prefix + ".mlp.experts.gate_up_proj"] = torch.cat([stack["gate_proj"], stack["up_proj"]], dim=1)
        out[prefix + ".mlp.experts.down_proj"] = stack["down_proj"]
    return out


def fresh_model(name: str, state: dict[str, torch.Tensor]):
    state = to_module_state(state)
    model = build(name).to(torch.float32)
    model.config._attn_implementation = "eager"
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = model.config.tie_word_embeddings
    missing = [m for m in missing if "rotary" not in m and not (tied and m == "lm_head.weight")]
    check(not unexpected and not missing, f"{name}: state dict {missing} {unexpected}")
    if tied:
        model.tie_weights()
    return model


# ---------------------------------------------------------------------------------------------
# HF (fp32) and NVFP4 (compressed-tensors) directories
# ---------------------------------------------------------------------------------------------

def copy_tokenizer(out: Path) -> None:
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(TOKENIZER_DIR / f, out / f)


def e2m1_round(x: np.ndarray) -> np.ndarray:
    """Nearest FP4 E2M1 value (ties to the even code), sign kept; |x| beyond 6 saturates."""
    a = np.minimum(np.abs(x), 6.0)
    idx = np.abs(a[..., None] - FP4_VALUES).argmin(-1)
    return np.sign(x) * FP4_VALUES[idx], idx.astype(np.uint8) | np.where(x < 0, 8, 0).astype(np.uint8)


def nvfp4_quantize(w: np.ndarray, global_scale: float):
    """w [N, K] -> (packed U8 [N, K/2], scale E4M3 [N, K/16] as torch, dequantized f32 [N, K])."""
    n, k = w.shape
    blocks = w.reshape(n, k // 16, 16)
    amax = np.abs(blocks).max(-1)
    scale = torch.from_numpy(amax / 6.0 * global_scale).to(torch.float8_e4m3fn)
    scale_f = scale.to(torch.float32).numpy()
    safe = np.where(scale_f == 0, 1.0, scale_f)
    values, codes = e2m1_round(blocks * global_scale / safe[..., None])
    values = np.where(scale_f[..., None] == 0, 0.0, values)
    codes = np.where(scale_f[..., None] == 0, 0, codes).reshape(n, k).astype(np.uint8)
    packed = (codes[:, 0::2] | (codes[:, 1::2] << 4)).astype(np.uint8)  # low nibble = even column
    deq = (values * scale_f[..., None] / global_scale).reshape(n, k).astype(np.float32)
    return torch.from_numpy(packed), scale, deq


def quantized_module(name: str) -> bool:
    return name.endswith(".weight") and ("self_attn." in name and "_proj" in name or ".experts." in name or
                                          ".mlp.gate_proj" in name or ".mlp.up_proj" in name or
                                          ".mlp.down_proj" in name or "shared_expert." in name)


def write_nvfp4(name: str, state: dict[str, torch.Tensor], out: Path, hf_config: dict) -> dict[str, torch.Tensor]:
    """Writes the nvfp4 directory; returns the dequantized state dict (HF save names)."""
    tensors: dict[str, torch.Tensor] = {}
    deq_state: dict[str, torch.Tensor] = {}
    globals_: dict[str, float] = {}
    for key, t in state.items():  # gate/up of one expert (or dense MLP) share a global scale
        if quantized_module(key) and (".gate_proj." in key or ".w1." in key):
            partner = key.replace(".gate_proj.", ".up_proj.").replace(".w1.", ".w3.")
            amax = max(float(t.abs().max()), float(state[partner].abs().max()))
            globals_[key] = globals_[partner] = 448.0 * 6.0 / amax
    for key, t in state.items():
        if not quantized_module(key):
            tensors[key] = t.contiguous()
            deq_state[key] = t
            continue
        g = globals_.get(key, 448.0 * 6.0 / float(t.abs().max()))
        packed, scale, deq = nvfp4_quantize(t.numpy(), g)
        module = key[: -len(".weight")]
        tensors[module + ".weight_packed"] = packed
        tensors[module + ".weight_scale"] = scale
        tensors[module + ".weight_global_scale"] = torch.tensor([g], dtype=torch.float32)
        deq_state[key] = torch.from_numpy(deq)
    out.mkdir(parents=True)
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    cfg = dict(hf_config)
    cfg["quantization_config"] = {
        "quant_method": "compressed-tensors", "format": "nvfp4-pack-quantized",
        "config_groups": {"group_0": {"format": "nvfp4-pack-quantized", "targets": ["Linear"],
                                      "weights": {"num_bits": 4, "type": "float", "strategy": "tensor_group",
                                                  "group_size": 16, "symmetric": True, "dynamic": False}}},
        "ignore": ["lm_head", "re:.*mlp.gate$", "re:.*block_sparse_moe.gate$", "re:.*shared_expert_gate$"]}
    (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n", encoding="utf-8")
    copy_tokenizer(out)
    return deq_state


# ---------------------------------------------------------------------------------------------
# GGUF
# ---------------------------------------------------------------------------------------------

def permute_rows(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's q/k permutation (half-split rope layout -> interleaved pairs)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute_rows(w: np.ndarray, n_head: int) -> np.ndarray:
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def add_tokenizer(w: GGUFWriter) -> None:
    tj = json.loads((TOKENIZER_DIR / "tokenizer.json").read_text(encoding="utf-8"))
    vocab = tj["model"]["vocab"]
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    specials = {a["content"] for a in tj.get("added_tokens", []) if a.get("special")}
    merges = [m if isinstance(m, str) else " ".join(m) for m in tj["model"]["merges"]]
    check(len(tokens) == COMMON["vocab_size"], f"tokenizer has {len(tokens)} tokens")
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types([3 if t in specials else 1 for t in tokens])
    w.add_token_merges(merges)
    w.add_eos_token_id(vocab["<|im_end|>"])
    w.add_add_bos_token(False)


GGUF_ARCH = {"qwen3moe": "qwen3moe", "mixtral": "llama", "qwen2moe": "qwen2moe", "gemma4": "gemma4"}
LAYER_NAMES = {  # HF module (after "model.layers.N.") -> GGUF tensor (after "blk.N.")
    "input_layernorm.weight": "attn_norm.weight", "post_attention_layernorm.weight": "ffn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight", "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight", "self_attn.o_proj.weight": "attn_output.weight",
    "self_attn.q_proj.bias": "attn_q.bias", "self_attn.k_proj.bias": "attn_k.bias",
    "self_attn.v_proj.bias": "attn_v.bias",
    "self_attn.q_norm.weight": "attn_q_norm.weight", "self_attn.k_norm.weight": "attn_k_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight", "mlp.gate.weight": "ffn_gate_inp.weight",
    "block_sparse_moe.gate.weight": "ffn_gate_inp.weight",
    "mlp.shared_expert.gate_proj.weight": "ffn_gate_shexp.weight",
    "mlp.shared_expert.up_proj.weight": "ffn_up_shexp.weight",
    "mlp.shared_expert.down_proj.weight": "ffn_down_shexp.weight",
    "mlp.shared_expert_gate.weight": "ffn_gate_inp_shexp.weight",
}
EXPERT_ROLES = {"gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down",
                "w1": "ffn_gate", "w3": "ffn_up", "w2": "ffn_down"}


def gguf_tensors(name: str, state: dict[str, torch.Tensor], cfg) -> tuple[dict, dict]:
    """(GGUF name -> f32 array, GGUF name -> (HF names, how to put it back)) for the whole model."""
    out: dict[str, np.ndarray] = {}
    back: dict[str, tuple] = {}
    n_exp = cfg.num_local_experts if name == "mixtral" else cfg.num_experts
    permute = GGUF_ARCH[name] == "llama"
    for key, t in state.items():
        a = t.float().numpy()
        if key == "model.embed_tokens.weight":
            out["token_embd.weight"], back["token_embd.weight"] = a, ([key], None)
        elif key == "model.norm.weight":
            out["output_norm.weight"], back["output_norm.weight"] = a, ([key], None)
        elif key == "lm_head.weight":
            out["output.weight"], back["output.weight"] = a, ([key], None)
    for il in range(cfg.num_hidden_layers):
        pre = f"model.layers.{il}."
        for hf, g in LAYER_NAMES.items():
            if pre + hf not in state:
                continue
            a = state[pre + hf].float().numpy()
            heads = {"attn_q.weight": cfg.num_attention_heads, "attn_k.weight": cfg.num_key_value_heads}.get(g)
            if permute and heads:
                a = permute_rows(a, heads)
            out[f"blk.{il}.{g}"] = a
            back[f"blk.{il}.{g}"] = ([pre + hf], heads if permute else None)
        block = "block_sparse_moe" if name == "mixtral" else "mlp"
        for proj, role in EXPERT_ROLES.items():
            keys = [f"{pre}{block}.experts.{e}.{proj}.weight" for e in range(n_exp)]
            if keys[0] in state:
                out[f"blk.{il}.{role}_exps.weight"] = np.stack([state[k].float().numpy() for k in keys])
                back[f"blk.{il}.{role}_exps.weight"] = (keys, "stack")
    return out, back


GEMMA4_NAMES = {  # HF module (after "model.layers.N.") -> GGUF tensor (after "blk.N.")
    "input_layernorm.weight": "attn_norm.weight", "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight", "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight", "self_attn.q_norm.weight": "attn_q_norm.weight",
    "self_attn.k_norm.weight": "attn_k_norm.weight", "post_attention_layernorm.weight": "post_attention_norm.weight",
    "pre_feedforward_layernorm.weight": "ffn_norm.weight", "post_feedforward_layernorm.weight": "post_ffw_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight", "layer_scalar": "layer_output_scale.weight",
    "router.proj.weight": "ffn_gate_inp.weight", "router.scale": "ffn_gate_inp.scale",
    "router.per_expert_scale": "ffn_down_exps.scale", "experts.gate_up_proj": "ffn_gate_up_exps.weight",
    "experts.down_proj": "ffn_down_exps.weight", "pre_feedforward_layernorm_2.weight": "pre_ffw_norm_2.weight",
    "post_feedforward_layernorm_1.weight": "post_ffw_norm_1.weight",
    "post_feedforward_layernorm_2.weight": "post_ffw_norm_2.weight",
}


def gemma4_gguf_tensors(state: dict[str, torch.Tensor], cfg) -> tuple[dict, dict]:
    out: dict[str, np.ndarray] = {"token_embd.weight": state["model.embed_tokens.weight"].numpy(),
                                  "output_norm.weight": state["model.norm.weight"].numpy()}
    back = {"token_embd.weight": (["model.embed_tokens.weight"], None),
            "output_norm.weight": (["model.norm.weight"], None)}
    for il in range(cfg.num_hidden_layers):
        for hf, g in GEMMA4_NAMES.items():
            key = f"model.layers.{il}.{hf}"
            if key in state:
                out[f"blk.{il}.{g}"] = state[key].float().numpy()
                back[f"blk.{il}.{g}"] = ([key], None)
    # proportional rope of the full layers as llama.cpp stores it: factor 1 for rotated pairs, huge for the rest
    hd = cfg.per_layer_config["full_attention"].head_dim
    pairs = int(cfg.rope_parameters["full_attention"]["partial_rotary_factor"] * hd // 2)
    out["rope_freqs.weight"] = np.array([1.0] * pairs + [1e30] * (hd // 2 - pairs), dtype=np.float32)
    return out, back


def add_gemma4_metadata(w: GGUFWriter, cfg) -> None:
    a = "gemma4"
    full = cfg.per_layer_config["full_attention"]
    sliding = [t == "sliding_attention" for t in cfg.layer_types]
    w.add_block_count(cfg.num_hidden_layers)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    layers = [cfg.per_layer_config[i] for i in range(cfg.num_hidden_layers)]
    swa = next(lc for lc, s in zip(layers, sliding) if s)
    w.add_array(f"{a}.attention.head_count_kv", [lc.num_key_value_heads for lc in layers])
    w.add_array(f"{a}.attention.sliding_window_pattern", sliding)
    w.add_uint32(f"{a}.attention.sliding_window", cfg.sliding_window)
    w.add_uint32(f"{a}.attention.key_length", full.head_dim)
    w.add_uint32(f"{a}.attention.value_length", full.head_dim)
    w.add_uint32(f"{a}.attention.key_length_swa", swa.head_dim)
    w.add_uint32(f"{a}.attention.value_length_swa", swa.head_dim)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_float32(f"{a}.rope.freq_base", cfg.rope_parameters["full_attention"]["rope_theta"])
    w.add_float32(f"{a}.rope.freq_base_swa", cfg.rope_parameters["sliding_attention"]["rope_theta"])
    w.add_float32(f"{a}.final_logit_softcapping", cfg.final_logit_softcapping)
    w.add_expert_count(cfg.num_experts)
    w.add_expert_used_count(cfg.top_k_experts)
    w.add_expert_feed_forward_length(cfg.moe_intermediate_size)


def tensor_type(gname: str, variant: str, arch_name: str) -> Q:
    if (gname.endswith("norm.weight") or ".bias" in gname or "ffn_gate_inp" in gname or gname.endswith(".scale") or
            "layer_output_scale" in gname or gname == "rope_freqs.weight"):
        return Q.F32
    if variant == "f16":
        return Q.F16
    if "_exps" in gname and ("ffn_gate" in gname or "ffn_up" in gname):
        return Q.Q4_0
    if "ffn_down_exps" in gname and arch_name == "mixtral":
        return Q.Q5_0
    return Q.Q8_0


def write_gguf(name: str, cfg, tensors: dict[str, np.ndarray], path: Path, variant: str, legacy_experts: bool):
    """Writes the GGUF; returns GGUF name -> dequantized f32 array (what ember reads)."""
    arch = GGUF_ARCH[name]
    w = GGUFWriter(str(path), arch)
    w.add_name(f"tiny random {name} ({variant})")
    if name == "gemma4":
        add_gemma4_metadata(w, cfg)
    else:
        add_moe_metadata(w, name, cfg)
    add_tokenizer(w)
    deq: dict[str, np.ndarray] = {}
    for gname, a in tensors.items():
        qt = tensor_type(gname, variant, name)
        if legacy_experts and "_exps." in gname:
            for e in range(a.shape[0]):
                ename = gname.replace("_exps.weight", f".{e}.weight")
                data = quants.quantize(a[e], qt) if qt != Q.F32 else a[e]
                w.add_tensor(ename, data, raw_dtype=qt if qt != Q.F32 else None)
            data = quants.quantize(a, qt)
        else:
            data = quants.quantize(a, qt) if qt != Q.F32 else a
            w.add_tensor(gname, data, raw_dtype=qt if qt != Q.F32 else None)
        deq[gname] = quants.dequantize(data, qt).astype(np.float32).reshape(a.shape) if qt != Q.F32 else a
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return deq


def add_moe_metadata(w: GGUFWriter, name: str, cfg) -> None:
    w.add_block_count(cfg.num_hidden_layers)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    w.add_key_length(head_dim)
    w.add_value_length(head_dim)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_rope_freq_base(cfg.rope_parameters["rope_theta"])
    n_exp = cfg.num_local_experts if name == "mixtral" else cfg.num_experts
    w.add_expert_count(n_exp)
    w.add_expert_used_count(cfg.num_experts_per_tok)
    if name != "mixtral":
        w.add_expert_feed_forward_length(cfg.moe_intermediate_size)
    if name == "qwen2moe":
        w.add_expert_shared_feed_forward_length(cfg.shared_expert_intermediate_size)


def state_from_gguf(deq: dict[str, np.ndarray], back: dict[str, tuple]) -> dict[str, torch.Tensor]:
    state = {}
    for gname, (keys, how) in back.items():
        a = deq[gname]
        if how == "stack":
            for e, k in enumerate(keys):
                state[k] = torch.from_numpy(np.ascontiguousarray(a[e]))
        else:
            state[keys[0]] = torch.from_numpy(np.ascontiguousarray(unpermute_rows(a, how) if how else a))
    return state


def write_gguf_variants(name: str, cfg, tensors: dict, back: dict, ids: list, out: Path) -> None:
    for variant in ("f16", "q8"):
        path = out / f"{name}.{variant}.gguf"
        deq = write_gguf(name, cfg, tensors, path, variant, legacy_experts=name == "mixtral" and variant == "f16")
        write_json(reference(fresh_model(name, state_from_gguf(deq, back)), ids, f"{path.name} dequantized"),
                   out / f"reference_{variant}.json")


# ---------------------------------------------------------------------------------------------

def make(name: str, out_dir: Path, seed: int) -> None:
    torch.manual_seed(seed)
    model = build(name)
    randomise(model, seed)
    out = out_dir / name
    shutil.rmtree(out, ignore_errors=True)
    hf_dir = out / "hf"
    model.to(torch.float32).save_pretrained(str(hf_dir))
    copy_tokenizer(hf_dir)
    (hf_dir / "generation_config.json").unlink(missing_ok=True)
    ids = prompts(seed)
    from safetensors.torch import load_file
    state = load_file(str(hf_dir / "model.safetensors"))  # the names save_pretrained wrote
    write_json(reference(fresh_model(name, state), ids, "hf fp32"), hf_dir / "reference.json")
    cfg = model.config
    if name == "gemma4":  # fused 3-D experts as saved; GGUF variants, no NVFP4 (see the header)
        check(any(k.endswith("experts.gate_up_proj") for k in state), "gemma4: expected fused 3-D experts")
        tensors, back = gemma4_gguf_tensors(state, cfg)
        write_gguf_variants(name, cfg, tensors, back, ids, out)
        print(f"  {name}: {sum(p.stat().st_size for p in out.rglob('*') if p.is_file()) / 1024:.0f} KiB")
        return
    check(any(".experts.0." in k for k in state), f"{name}: expected one tensor per expert in the checkpoint")

    hf_config = json.loads((hf_dir / "config.json").read_text(encoding="utf-8"))
    deq_state = write_nvfp4(name, state, out / "nvfp4", hf_config)
    write_json(reference(fresh_model(name, deq_state), ids, "nvfp4 weights dequantized"),
               out / "nvfp4" / "reference.json")

    tensors, back = gguf_tensors(name, state, cfg)
    write_gguf_variants(name, cfg, tensors, back, ids, out)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    biggest = max((p for p in out.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    check(biggest.stat().st_size < 2 << 20, f"{biggest} is over 2 MB")
    print(f"  {name}: {size / 1024:.0f} KiB (largest {biggest.name} {biggest.stat().st_size / 1024:.0f} KiB)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out-dir", type=Path, default=REPO / "tests" / "fixtures" / "moe")
    ap.add_argument("--only", action="append")
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    for i, name in enumerate(["qwen3moe", "mixtral", "qwen2moe", "gemma4"]):
        if args.only and name not in args.only:
            continue
        make(name, args.out_dir, seed=2000 + i)


if __name__ == "__main__":
    main()
