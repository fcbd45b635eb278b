#!/usr/bin/env python3
"""Checks an `ember quantize` output directory with the compressed-tensors package.

    check_compressed_tensors.py OUTDIR [--reference BF16DIR --report REPORT.json]

1. config.json's quantization_config must validate as compressed-tensors'
   QuantizationConfig, and every quantized module must hold exactly the tensors the
   format's compressor expects (compression_param_names), with the right dtypes/shapes.
2. Every quantized module is decompressed with compressed-tensors' own compressor
   (NVFP4PackedCompressor / MXFP4PackedCompressor) and compared with an independent numpy
   dequantization of the raw bytes (FACTS.md: E2M1 codes, low nibble = even column,
   E4M3 scales / E8M0 exponents, weight_global_scale a divisor): they must agree to the
   rounding of the dtype compressed-tensors decompresses in (bf16: 2^-6 relative).
3. With --reference (the same input written with --scheme bf16) and --report (ember's
   per-module SNR report of OUTDIR): the SNR of the decompressed weight (plus the
   svdquant_lora_b @ svdquant_lora_a term when present) against the reference must match
   the SNR ember reported, within --tolerance-db.

Exit 0 when every check passes, 1 otherwise, 77 when compressed-tensors/torch are missing.
"""
import argparse
import json
import math
import os
import sys

import numpy as np

try:
    import torch
    from compressed_tensors.compressors.base import BaseCompressor
    from compressed_tensors.quantization import QuantizationConfig
    from safetensors import safe_open
except ImportError as e:  # pragma: no cover
    print(f"SKIP: {e} (install compressed-tensors: scripts/install-deps.sh)")
    sys.exit(77)

E2M1 = np.array([0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6], dtype=np.float32)


def e4m3_to_float(b):
    b = b.astype(np.int32)
    sign = np.where(b & 0x80, -1.0, 1.0)
    exp = (b >> 3) & 0xF
    man = b & 0x7
    val = np.where(exp == 0, man / 8.0 * 2.0 ** -6, (1 + man / 8.0) * 2.0 ** (exp - 7.0))
    val = np.where((b & 0x7F) == 0x7F, np.nan, val)
    return (sign * val).astype(np.float32)


def load_tensors(d):
    out = {}
    index = os.path.join(d, "model.safetensors.index.json")
    files = sorted(set(json.load(open(index))["weight_map"].values())) if os.path.exists(index) else ["model.safetensors"]
    for f in files:
        with safe_open(os.path.join(d, f), framework="pt") as st:
            for k in st.keys():
                out[k] = st.get_tensor(k)
    return out


def numpy_dequant(fmt, packed, scale, global_scale):
    p = packed.numpy()
    codes = np.empty((p.shape[0], p.shape[1] * 2), dtype=np.uint8)
    codes[:, 0::2] = p & 0x0F  # even column in the low nibble
    codes[:, 1::2] = p >> 4
    vals = E2M1[codes]
    if fmt == "nvfp4-pack-quantized":
        s = e4m3_to_float(scale.view(torch.uint8).numpy())
        w = vals.reshape(p.shape[0], -1, 16) * s[:, :, None] / np.float32(global_scale.item())
    else:
        s = np.exp2(scale.numpy().astype(np.float32) - 127)
        w = vals.reshape(p.shape[0], -1, 32) * s[:, :, None]
    return w.reshape(p.shape[0], -1)


def snr_db(ref, x):
    ref = ref.astype(np.float64)
    err = ((ref - x.astype(np.float64)) ** 2).sum()
    return math.inf if err == 0 else 10 * math.log10((ref ** 2).sum() / err)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("outdir")
    ap.add_argument("--reference", help="the same model written with --scheme bf16")
    ap.add_argument("--report", help="ember quantize --report JSON of OUTDIR")
    ap.add_argument("--tolerance-db", type=float, default=0.15)
    a = ap.parse_args()

    cfg = json.load(open(os.path.join(a.outdir, "config.json")))
    qc = QuantizationConfig.model_validate(cfg["quantization_config"])
    fmt = qc.format
    scheme = next(iter(qc.config_groups.values()))
    compressor = BaseCompressor.get_value_from_registry(fmt)
    expected = set(compressor.compression_param_names(scheme))
    tensors = load_tensors(a.outdir)
    modules = sorted(k[: -len(".weight_packed")] for k in tensors if k.endswith(".weight_packed"))
    reference = load_tensors(a.reference) if a.reference else None
    reported = {}
    if a.report:
        reported = {m["name"]: m for m in json.load(open(a.report))["modules"]}
    failures = 0
    worst = 0.0
    for m in modules:
        params = {k[len(m) + 1:]: v for k, v in tensors.items() if k.startswith(m + ".") and not k.startswith(m + ".svdquant")}
        if set(params) != expected:
            print(f"FAIL {m}: tensors {sorted(params)} but {fmt} expects {sorted(expected)}")
            failures += 1
            continue
        if any(ig == m or m.endswith("." + ig) for ig in qc.ignore or []):
            print(f"FAIL {m}: quantized but listed in ignore")
            failures += 1
        dec_t = compressor.decompress(dict(params), scheme)["weight"]
        dec = dec_t.float().numpy()
        ref = numpy_dequant(fmt, params["weight_packed"], params["weight_scale"], params.get("weight_global_scale"))
        # compressed-tensors computes in the unpacked dtype (bf16): allow its rounding, no more.
        rtol = 0.0 if dec_t.dtype == torch.float32 else 2.0 ** -6
        if dec.shape != ref.shape or not np.all(np.abs(dec - ref) <= rtol * np.abs(ref) + 1e-30):
            diff = np.abs(dec - ref).max() if dec.shape == ref.shape else "shape"
            print(f"FAIL {m}: compressed-tensors ({dec_t.dtype}) and the FACTS.md dequantization differ (max {diff})")
            failures += 1
        if reference is None:
            continue
        w = dec.astype(np.float64)
        if m + ".svdquant_lora_a" in tensors:
            la = tensors[m + ".svdquant_lora_a"].float().numpy().astype(np.float64)
            lb = tensors[m + ".svdquant_lora_b"].float().numpy().astype(np.float64)
            w = w + lb @ la
        src = reference[m + ".weight"].float().numpy()
        got = snr_db(src, w)
        if m in reported:
            want = reported[m]["snr_db_compensated"]
            worst = max(worst, abs(got - want))
            if abs(got - want) > a.tolerance_db:
                print(f"FAIL {m}: SNR vs the bf16 reference {got:.3f} dB, ember reported {want:.3f} dB")
                failures += 1
    for ig in qc.ignore or []:  # plain names (not re:) must be bf16/f16/f32 weights, or the tied lm_head
        if not ig.startswith("re:") and ig != "lm_head" and tensors.get(ig + ".weight") is None:
            print(f"FAIL ignored module {ig} has no plain {ig}.weight")
            failures += 1
    print(f"checked {len(modules)} {fmt} modules in {a.outdir}: {failures} failure(s)"
          + (f", largest SNR difference from ember's report {worst:.4f} dB" if reported and reference else ""))
    if not modules:
        print("FAIL: no quantized modules found")
        return 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
