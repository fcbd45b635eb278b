#!/usr/bin/env python3
"""Malformed-checkpoint suite: >= 1000 mutated Hugging Face model dirs through the ember CLI.

Starting from the tiny models in tests/fixtures/hf/ (single-file and sharded), each mutant
changes one file of a copy of the directory: the 8-byte header length of a .safetensors
file (0, 1, off by one, the file size, 2^63, 2^64-1, the cap, ...), bytes of its JSON
header (bit flips, overwritten runs, deleted bytes, with or without fixing the length),
one field of one tensor re-written inside the JSON (data_offsets, shape, dtype: wrong
types, negative, huge, overflowing products, missing, swapped), truncations of any file,
and model.safetensors.index.json weight_map entries (missing / escaping / duplicate
shards, wrong types). Each dir goes through `ember info -m DIR` and
`ember run --cpu -m DIR -p hi -n 2`, under a 1 GiB address-space limit: every run must
exit 0 or 2 (2 with an "error:" line), never die from a signal, a timeout or the limit.
Usage: malformed_safetensors.py EMBER_BINARY SOURCE_DIR [N_DIRS] (default 1100; the
mutants are sampled from every kind for every fixture; EMBER_SEED fixes the sample).
"""
import json
import os
import random
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

U64 = (1 << 64) - 1
BIG_INTS = [0, 1, -1, 2, 7, 8, 4096, 1 << 31, (1 << 31) - 1, 1 << 32, 1 << 53, 1 << 62, (1 << 63) - 1, 1 << 63, U64,
            1 << 64, -(1 << 63)]
ODD_VALUES = [None, True, "1", 1.5, -0.0, 1e300, [], {}, [1], [[1]]]
DTYPES = ["F32", "F16", "BF16", "U8", "I8", "F8_E4M3", "F8_E5M2", "F8_E8M0", "BOOL", "I64", "F64", "U64", "f32", "",
          "F4", "Q4_0", "F32 ", 12]


def split(data: bytes):
    """(header length, parsed header dict, data region) of a valid safetensors image."""
    n = struct.unpack_from("<Q", data, 0)[0]
    return n, json.loads(data[8:8 + n]), data[8 + n:]


def join(header: dict, body: bytes, pad: bool = True) -> bytes:
    text = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + body


def length_mutants(data: bytes):
    n = struct.unpack_from("<Q", data, 0)[0]
    for v in {0, 1, 2, 7, n - 1, n + 1, n + 8, n - 8, len(data) - 8, len(data) - 7, len(data), 100_000_000,
              100_000_001, 1 << 32, 1 << 63, U64, U64 - 7, n * 4096 & U64}:
        yield struct.pack("<Q", v & U64) + data[8:]
    yield data[:4]
    yield data[:8]


def header_byte_mutants(data: bytes, rng: random.Random, count: int):
    n = struct.unpack_from("<Q", data, 0)[0]
    for _ in range(count):
        b = bytearray(data)
        kind = rng.randrange(4)
        i = 8 + rng.randrange(n)
        if kind == 0:
            for _ in range(rng.randint(1, 3)):
                b[8 + rng.randrange(n)] ^= 1 << rng.randrange(8)
        elif kind == 1:
            b[i:i + 1] = bytes([rng.choice(b'{}[]":,0123456789-e.\\ \x00\xff')])
        elif kind == 2:  # delete bytes, fixing the length so the JSON itself is what is wrong
            k = rng.randint(1, 8)
            del b[i:i + k]
            b[0:8] = struct.pack("<Q", max(0, n - k))
        else:  # insert bytes
            ins = bytes(rng.choice(b'{}[]":,0123456789 \xc3\x80') for _ in range(rng.randint(1, 8)))
            b[i:i] = ins
            if rng.random() < 0.5:
                b[0:8] = struct.pack("<Q", n + len(ins))
        yield bytes(b)


def field_mutants(data: bytes, rng: random.Random):
    """One field of one tensor (or the metadata) changed, the header re-serialized."""
    _, header, body = split(data)
    names = [k for k in header if k != "__metadata__"]
    for name in rng.sample(names, min(len(names), 3)):
        t = header[name]
        variants = []
        lo, hi = t["data_offsets"]
        for v in BIG_INTS + ODD_VALUES:
            variants.append(("data_offsets", [v, hi]))
            variants.append(("data_offsets", [lo, v]))
        variants += [("data_offsets", [hi, lo]), ("data_offsets", [lo]), ("data_offsets", [lo, hi, hi]),
                     ("data_offsets", [lo + 1, hi + 1]), ("data_offsets", [lo, hi - 1]), ("data_offsets", "0,1")]
        shape = t["shape"]
        for v in BIG_INTS + ODD_VALUES:
            variants.append(("shape", [v] + shape[1:] if shape else [v]))
        variants += [("shape", []), ("shape", shape + [1]), ("shape", shape + [0]), ("shape", shape[::-1]),
                     ("shape", [1 << 32, 1 << 32]), ("shape", [(1 << 63) - 1, 2]), ("shape", [-1, -1]),
                     ("shape", [1] * 64), ("shape", None)]
        variants += [("dtype", d) for d in DTYPES]
        variants += [(key, "<delete>") for key in ("dtype", "shape", "data_offsets")]
        variants += [("extra", 1), ("<tensor>", []), ("<tensor>", "x"), ("<tensor>", None)]
        for key, value in variants:
            h = json.loads(json.dumps(header))
            if key == "<tensor>":
                h[name] = value
            elif value == "<delete>":
                del h[name][key]
            else:
                h[name][key] = value
            yield join(h, body)
    for meta in ({"a": 1}, [], "x", {"k": None}, {"k": {"n": "v"}}, None):
        yield join(dict(header, __metadata__=meta), body)
    yield join({"": header[names[0]], **header}, body) if names else data
    yield join(header, body + b"\0" * 8)  # trailing bytes after the last tensor
    yield join(header, body[:-1]) if body else data
    yield join(header, body, pad=False) + b"\0"
    yield json.dumps(header).encode()  # no length prefix at all
    first = json.dumps(header, separators=(",", ":"))[:-1]
    dup = first + "," + json.dumps({names[0]: header[names[0]]})[1:] if names else first + "}"
    yield struct.pack("<Q", len(dup)) + dup.encode() + body  # duplicate tensor name


def index_mutants(text: str):
    index = json.loads(text)
    wm = index["weight_map"]
    names = sorted(wm)
    shards = sorted(set(wm.values()))
    for shard in ["missing.safetensors", "../model.safetensors", "/etc/passwd", "sub/x.safetensors", "", ".", "..",
                  shards[-1], 1, None, ["a"], "model.safetensors.index.json", "config.json", "x" * 5000]:
        for name in (names[0], names[-1]):
            yield json.dumps(dict(index, weight_map=dict(wm, **{name: shard}))).encode()
    yield json.dumps(dict(index, weight_map=dict(wm, **{"extra.weight": shards[0]}))).encode()
    yield json.dumps(dict(index, weight_map={k: v for k, v in wm.items() if k != names[0]})).encode()
    for bad in ({}, [], None, "x", 1, {"": shards[0]}):
        yield json.dumps(dict(index, weight_map=bad)).encode()
    yield json.dumps({k: v for k, v in index.items() if k != "weight_map"}).encode()
    yield json.dumps(dict(index, metadata={"total_size": -1})).encode()
    yield b"[]"
    yield b""


def truncations(data: bytes, rng: random.Random, count: int):
    n = struct.unpack_from("<Q", data, 0)[0] if len(data) >= 8 else 0
    cuts = {0, 1, 7, 8, 9, 8 + n - 1, 8 + n, 8 + n + 1, len(data) - 1} | {rng.randrange(len(data)) for _ in range(count)}
    for c in sorted(cut for cut in cuts if 0 <= cut < len(data)):
        yield data[:c]


def mutants_for(model: Path, rng: random.Random, budget: int):
    """(file name, bytes) pairs for one fixture dir, sampled to `budget`."""
    by_kind = []
    for st in sorted(model.glob("*.safetensors")):
        data = st.read_bytes()
        by_kind.append([(st.name, m) for m in length_mutants(data)])
        by_kind.append([(st.name, m) for m in header_byte_mutants(data, rng, 60)])
        by_kind.append([(st.name, m) for m in field_mutants(data, rng)])
        by_kind.append([(st.name, m) for m in truncations(data, rng, 12)])
    index = model / "model.safetensors.index.json"
    if index.exists():
        by_kind.append([(index.name, m) for m in index_mutants(index.read_text())])
        by_kind.append([(index.name, m) for m in truncations(index.read_bytes(), rng, 8)])
    for other in ("config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json"):
        if (model / other).exists():
            by_kind.append([(other, m) for m in truncations((model / other).read_bytes(), rng, 3)])
    # Spread the budget evenly over the kinds, then fill up from what is left.
    out, rest = [], []
    share = max(1, budget // len(by_kind))
    for kind in by_kind:
        rng.shuffle(kind)
        out += kind[:share]
        rest += kind[share:]
    rng.shuffle(rest)
    return out + rest[:max(0, budget - len(out))]


def limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def check(ember: str, path: str) -> tuple:
    codes = []
    for args in (["info", "-m", path], ["run", "--cpu", "-m", path, "-p", "hi", "-n", "2", "-c", "64"]):
        try:
            r = subprocess.run([ember, *args], capture_output=True, timeout=20, preexec_fn=limit_memory)
        except subprocess.TimeoutExpired:
            return codes, f"timeout: ember {' '.join(args)}"
        codes.append(r.returncode)
        if r.returncode not in (0, 2):
            return codes, f"exit {r.returncode}: ember {' '.join(args)}\n{r.stderr.decode(errors='replace')[-400:]}"
        if r.returncode == 2 and b"error:" not in r.stderr:
            return codes, f"exit 2 without an error message: ember {' '.join(args)}"
    return codes, ""


def run_one(ember: str, tmp: Path, model: Path, i: int, file_name: str, data: bytes) -> tuple:
    d = tmp / f"{model.name}-{i}"
    d.mkdir()
    for f in model.iterdir():
        if f.name != file_name:
            os.symlink(f.resolve(), d / f.name)
    (d / file_name).write_bytes(data)
    codes, msg = check(ember, str(d))
    if msg:
        keep = tmp.parent / f"ember-malformed-st-{model.name}-{i}"
        shutil.rmtree(keep, ignore_errors=True)
        shutil.copytree(d, keep, symlinks=False)
        msg = f"{keep} ({file_name} mutated): {msg}"
    shutil.rmtree(d)
    return codes, msg


def main() -> int:
    ember, src = sys.argv[1], Path(sys.argv[2])
    n_dirs = int(sys.argv[3]) if len(sys.argv) > 3 else 1100
    seed = int(os.environ.get("EMBER_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    models = sorted(p.parent for p in (src / "tests" / "fixtures" / "hf").glob("*/config.json"))
    jobs = []
    for model in models:
        jobs += [(model, i, name, data) for i, (name, data) in
                 enumerate(mutants_for(model, rng, n_dirs // len(models) + 1))]
    failures, counts = [], {}
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        results = pool.map(lambda j: run_one(ember, Path(tmp), *j), jobs)
        for codes, msg in results:
            for c in codes:
                counts[c] = counts.get(c, 0) + 1
            if msg:
                failures.append(msg)
    print(f"malformed safetensors suite (seed {seed}): {len(jobs)} model dirs from {len(models)} fixtures, "
          f"exit codes {counts}")
    for f in failures[:20]:
        print("FAIL", f)
    print(f"{len(jobs) - len(failures)} passed, {len(failures)} failed")
    return 1 if failures or len(jobs) < min(1000, n_dirs) else 0


if __name__ == "__main__":
    sys.exit(main())
