#!/usr/bin/env python3
"""Load generator for an OpenAI-compatible server (ember serve, or any other).

Sends --requests streaming completions (httpx, server-sent events), --concurrency at a
time, and reports output tokens/s, time to first token (TTFT) and inter-token latency
(ITL) percentiles, as one JSON line.
Prompts are --prompt-tokens random token ids (distinct per request, so no prefix-cache
hits) or, with --fixed-prompt, one text for every request.

    .venv/bin/python bench/serve_bench.py --url http://127.0.0.1:8080 \
        --concurrency 8 --requests 32 --prompt-tokens 128 --max-tokens 64
"""
import argparse
import asyncio
import json
import random
import statistics
import sys
import time

try:
    import httpx
except ImportError:  # pragma: no cover - the project venv has it (scripts/install-deps.sh)
    sys.exit("serve_bench.py needs httpx: use .venv/bin/python (scripts/install-deps.sh)")


def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    k = (len(values) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


async def stream_completion(client, args, prompt):
    """Yields (arrival time, parsed SSE chunk) for one streaming /v1/completions request."""
    body = {"model": args.model, "prompt": prompt, "max_tokens": args.max_tokens, "temperature": args.temperature,
            "stream": True, "stream_options": {"include_usage": True}, "ignore_eos": not args.allow_eos}
    async with client.stream("POST", "/v1/completions", json=body) as r:
        if r.status_code != 200:
            raise RuntimeError(f"HTTP {r.status_code}: {(await r.aread())[:200]!r}")
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if "error" in chunk:
                raise RuntimeError(f"stream error: {chunk['error']}")
            yield time.perf_counter(), chunk


async def one_request(client, args, prompt, stats):
    start = time.perf_counter()
    first = last = None
    n_tokens = 0
    gaps = []
    usage = None
    async for now, chunk in stream_completion(client, args, prompt):
        if chunk.get("usage"):
            usage = chunk["usage"]
        choices = chunk.get("choices") or []
        if not choices or not choices[0].get("text"):
            continue
        if first is None:
            first = now
        else:
            gaps.append(now - last)
        last = now
        n_tokens += 1
    if usage is not None:
        n_tokens = usage["completion_tokens"]
    stats["ttft"].append((first or time.perf_counter()) - start)
    stats["itl"].extend(gaps)
    stats["tokens"] += n_tokens
    stats["prompt_tokens"] += usage["prompt_tokens"] if usage else 0


async def worker(client, args, queue, stats):
    while True:
        try:
            prompt = queue.get_nowait()
        except asyncio.QueueEmpty:
            return
        try:
            await one_request(client, args, prompt, stats)
        except Exception as e:  # noqa: BLE001 - counted and reported
            stats["errors"].append(repr(e))


def make_prompts(args):
    rng = random.Random(args.seed)
    if args.fixed_prompt:
        return [args.fixed_prompt] * args.requests
    return [[rng.randrange(args.min_token_id, args.max_token_id) for _ in range(args.prompt_tokens)]
            for _ in range(args.requests)]


async def run(args):
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    limits = httpx.Limits(max_connections=args.concurrency + 4, max_keepalive_connections=args.concurrency + 4)
    client = httpx.AsyncClient(base_url=args.url.rstrip("/"), headers=headers, timeout=args.timeout, limits=limits)
    queue = asyncio.Queue()
    for p in make_prompts(args):
        queue.put_nowait(p)
    stats = {"ttft": [], "itl": [], "tokens": 0, "prompt_tokens": 0, "errors": []}
    start = time.perf_counter()
    await asyncio.gather(*(worker(client, args, queue, stats) for _ in range(args.concurrency)))
    wall = time.perf_counter() - start
    await client.aclose()
    return {
        "concurrency": args.concurrency,
        "requests": args.requests,
        "errors": len(stats["errors"]),
        "first_errors": stats["errors"][:3],
        "wall_s": round(wall, 3),
        "output_tokens": stats["tokens"],
        "prompt_tokens": stats["prompt_tokens"],
        "output_tok_s": round(stats["tokens"] / wall, 2),
        "ttft_p50_ms": round(1000 * percentile(stats["ttft"], 50), 1),
        "ttft_p99_ms": round(1000 * percentile(stats["ttft"], 99), 1),
        "itl_p50_ms": round(1000 * percentile(stats["itl"], 50), 1),
        "itl_p99_ms": round(1000 * percentile(stats["itl"], 99), 1),
        "itl_mean_ms": round(1000 * statistics.fmean(stats["itl"]), 1) if stats["itl"] else None,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8080", help="server base URL (without /v1)")
    ap.add_argument("--api-key", default="", help="Bearer key, if the server wants one")
    ap.add_argument("--model", default="default", help="the model field sent")
    ap.add_argument("--concurrency", type=int, default=1, help="requests in flight at once")
    ap.add_argument("--requests", type=int, default=16, help="requests in total")
    ap.add_argument("--prompt-tokens", type=int, default=128, help="random prompt length in tokens")
    ap.add_argument("--fixed-prompt", default="", help="send this text as every prompt instead")
    ap.add_argument("--max-tokens", type=int, default=64, help="tokens generated per request")
    ap.add_argument("--temperature", type=float, default=0.0)
    ap.add_argument("--allow-eos", action="store_true", help="let requests stop early at end-of-text")
    ap.add_argument("--min-token-id", type=int, default=1000)
    ap.add_argument("--max-token-id", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--label", default="", help="a name echoed into the JSON result")
    args = ap.parse_args()
    if args.concurrency < 1 or args.requests < 1:
        ap.error("--concurrency and --requests must be positive")
    result = asyncio.run(run(args))
    if args.label:
        result = {"label": args.label, **result}
    print(json.dumps(result))
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
