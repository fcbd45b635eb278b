#!/usr/bin/env python3
"""Malformed-file suite: >= 1000 mutated GGUF files through the ember CLI.

Starting from valid small files (tests/fuzz/corpus/gguf), it makes bit flips,
truncations, and sets every size/offset/count field the format has (string lengths,
array counts, n_dims, dims, tensor types and offsets, the header counts) to 0, 1,
max, negative-as-unsigned and off-by-one values. Each file goes through `ember info`
and `ember run --cpu`, under a 1 GiB address-space limit: every run must exit 0 or 2
(2 with an "error:" line), never die from a signal, a timeout or the memory limit.
Usage: malformed_gguf.py EMBER_BINARY SOURCE_DIR [N_FILES] (default 1050; the field
mutants are sampled down to fit, a third of the files are random mutants).
"""
import os
import random
import resource
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

SCALARS = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


def fields(data: bytes):
    """(offset, width) of every count/length/type/offset field of a valid GGUF file."""
    out = [(8, 8), (16, 8)]
    n_tensors, n_kv = struct.unpack_from("<QQ", data, 8)
    pos = 24

    def string(p):
        out.append((p, 8))
        return p + 8 + struct.unpack_from("<Q", data, p)[0]

    def value(p, t):
        if t in SCALARS:
            return p + SCALARS[t]
        if t == 8:
            return string(p)
        out.append((p, 4))  # element type
        out.append((p + 4, 8))  # count
        et, n = struct.unpack_from("<IQ", data, p)
        p += 12
        for _ in range(n):
            p = value(p, et)
        return p

    for _ in range(n_kv):
        pos = string(pos)
        out.append((pos, 4))
        t = struct.unpack_from("<I", data, pos)[0]
        pos = value(pos + 4, t)
    for _ in range(n_tensors):
        pos = string(pos)
        out.append((pos, 4))
        n_dims = struct.unpack_from("<I", data, pos)[0]
        pos += 4
        for _ in range(n_dims):
            out.append((pos, 8))
            pos += 8
        out.append((pos, 4))  # type
        out.append((pos + 4, 8))  # offset
        pos += 12
    return out


def field_mutants(data: bytes):
    for off, width in fields(data):
        old = int.from_bytes(data[off:off + width], "little")
        top = (1 << (8 * width)) - 1
        for v in {0, 1, top, top >> 1, 1 << (8 * width - 1), (old + 1) & top, (old - 1) & top, old * 4096 & top}:
            b = bytearray(data)
            b[off:off + width] = v.to_bytes(width, "little")
            yield bytes(b)


def random_mutants(data: bytes, rng: random.Random, n: int):
    for _ in range(n):
        b = bytearray(data)
        kind = rng.randrange(3)
        if kind == 0:  # bit flips in the header region
            for _ in range(rng.randint(1, 4)):
                i = rng.randrange(min(len(b), 4096))
                b[i] ^= 1 << rng.randrange(8)
        elif kind == 1:  # truncation
            b = b[:rng.randrange(len(b))]
        else:  # overwrite a run with 0x00 / 0xff
            i = rng.randrange(len(b))
            b[i:i + rng.randint(1, 16)] = bytes([rng.choice([0, 255])]) * rng.randint(1, 16)
        yield bytes(b)


def limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def check(ember: str, path: str, counts: dict) -> str:
    for args in (["info", "-m", path], ["run", "--cpu", "-m", path, "-p", "the", "-n", "2", "-c", "64"]):
        try:
            r = subprocess.run([ember, *args], capture_output=True, timeout=20, preexec_fn=limit_memory)
        except subprocess.TimeoutExpired:
            return f"timeout: ember {' '.join(args)}"
        counts[r.returncode] = counts.get(r.returncode, 0) + 1
        if r.returncode not in (0, 2):
            return f"exit {r.returncode}: ember {' '.join(args)}\n{r.stderr.decode(errors='replace')[-400:]}"
        if r.returncode == 2 and b"error:" not in r.stderr:
            return f"exit 2 without an error message: ember {' '.join(args)}"
    return ""


def main() -> int:
    ember, src = sys.argv[1], Path(sys.argv[2])
    n_files = int(sys.argv[3]) if len(sys.argv) > 3 else 1050
    seed = int(os.environ.get("EMBER_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    seeds = sorted((src / "tests" / "fuzz" / "corpus" / "gguf").glob("*.gguf"))
    failures, total, counts = [], 0, {}
    with tempfile.TemporaryDirectory() as tmp:
        for s in seeds:
            data = s.read_bytes()
            per_seed = n_files // len(seeds)
            by_field = list(field_mutants(data))
            by_field = rng.sample(by_field, min(len(by_field), per_seed * 2 // 3))
            mutants = by_field + list(random_mutants(data, rng, per_seed - len(by_field)))
            for i, m in enumerate(mutants):
                path = os.path.join(tmp, f"{s.stem}-{i}.gguf")
                Path(path).write_bytes(m)
                msg = check(ember, path, counts)
                total += 1
                if msg:
                    keep = Path(tmp).parent / f"ember-malformed-{s.stem}-{i}.gguf"
                    keep.write_bytes(m)
                    failures.append(f"{keep}: {msg}")
                os.unlink(path)
    print(f"malformed GGUF suite (seed {seed}): {total} files, exit codes {counts}")
    for f in failures[:20]:
        print("FAIL", f)
    print(f"{total - len(failures)} passed, {len(failures)} failed")
    return 1 if failures or total < min(1000, n_files) else 0


if __name__ == "__main__":
    sys.exit(main())
