#!/usr/bin/env python3
"""Soak test for `ember serve` (not in CI).

N concurrent streaming clients for M minutes with varied prompts and max_tokens; reports
failed requests, requests completed, tokens/s, the server's RSS over time (VmRSS from
/proc/PID/status), RSS growth after warm-up (peak of the first quarter vs peak of the last
quarter) and, at the end, the KV blocks in use and running/waiting requests from /metrics.
Exits 1 when an acceptance condition fails: any failed request, RSS growth >= --max-growth
(5%), KV blocks (or KV usage) not 0 at the end, or requests still running.

  bench/soak.py --clients 64 --minutes 10                  # starts build*/bin/ember serve
  bench/soak.py --url http://127.0.0.1:8080 --pid 1234     # an already running server
"""
import argparse
import http.client
import json
import os
import pathlib
import random
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse

ROOT = pathlib.Path(__file__).resolve().parents[1]
MODEL = pathlib.Path(os.environ.get("EMBER_MODELS_DIR", ROOT / "models")) / "SmolLM2-135M-Instruct.Q4_1.gguf"

PROMPTS = [
    "Tell me a story about a lighthouse keeper.",
    "List five prime numbers and explain why they are prime.",
    "What is the capital of France? Answer in one sentence.",
    "Write a haiku about the sea.",
    "Explain photosynthesis to a ten year old.",
    "Translate 'good morning, how are you' into Spanish and German.",
    "Give three tips for writing clean code.",
    "Describe the water cycle step by step.",
    "Once upon a time, in a small village by the river,",
    "The quick brown fox",
    "Summarise the plot of a heist movie you invent on the spot, in detail, with named characters.",
    "Count from one to twenty in words.",
]


def find_ember():
    for build in ("build", "build-server", "build-hard", "build-batch"):
        p = ROOT / build / "bin" / "ember"
        if p.exists():
            return str(p)
    sys.exit("no built ember found; pass --ember or --url")


def start_server(args):
    cmd = [args.ember or find_ember(), "serve", "-m", args.model, "--port", "0", "--cpu", *args.serve_args.split()]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    port, log = None, []
    deadline = time.time() + 60
    while time.time() < deadline and port is None:
        line = proc.stderr.readline()
        if not line:
            break
        log.append(line)
        m = re.search(r"listening on http://\S+:(\d+)", line)
        if m:
            port = int(m.group(1))
    if port is None:
        proc.kill()
        sys.exit("ember serve did not start:\n" + "".join(log))
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()  # drain the log
    print(f"started: {' '.join(cmd)} (pid {proc.pid}, port {port})", flush=True)
    return proc, f"http://127.0.0.1:{port}"


def get(url, path, timeout=10):
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read().decode()
    except OSError:
        return 0, ""
    finally:
        conn.close()


def metrics(url):
    status, text = get(url, "/metrics")
    out = {}
    if status != 200:
        return out
    for line in text.splitlines():
        m = re.match(r"^(ember_[a-z_]+)(\{[^}]*\})?\s+(\S+)$", line)
        if m and "le=" not in (m.group(2) or ""):
            out[m.group(1)] = out.get(m.group(1), 0.0) + float(m.group(3))
    return out


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.ok = 0
        self.tokens = 0
        self.errors = {}
        self.latencies = []

    def success(self, n_tokens, latency):
        with self.lock:
            self.ok += 1
            self.tokens += n_tokens
            self.latencies.append(latency)

    def failure(self, what):
        with self.lock:
            self.errors[what] = self.errors.get(what, 0) + 1


def one_request(u, api_key, rng):
    """One streaming request; returns completion tokens; raises RuntimeError on any failure."""
    chat = rng.random() < 0.5
    max_tokens = rng.choice([1, 8, 16, 32, 64, 128, 200])
    prompt = rng.choice(PROMPTS)
    body = {"max_tokens": max_tokens, "stream": True, "stream_options": {"include_usage": True},
            "temperature": rng.choice([0.0, 0.7, 1.0]), "seed": rng.randrange(1 << 30)}
    if rng.random() < 0.3:
        body["ignore_eos"] = True
    if chat:
        body["messages"] = [{"role": "user", "content": prompt}]
        path = "/v1/chat/completions"
    else:
        body["prompt"] = prompt
        path = "/v1/completions"
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=300)
    try:
        conn.request("POST", path, json.dumps(body), headers)
        r = conn.getresponse()
        if r.status != 200:
            raise RuntimeError(f"http {r.status}: {r.read()[:200]!r}")
        usage, done, finish = None, False, None
        for raw in r:
            line = raw.decode().strip()
            if not line.startswith("data: "):
                continue
            data = line[6:]
            if data == "[DONE]":
                done = True
                break
            event = json.loads(data)
            if "error" in event:
                raise RuntimeError(f"stream error: {event['error'].get('message')}")
            if event.get("usage"):
                usage = event["usage"]
            for c in event.get("choices") or []:
                finish = c.get("finish_reason") or finish
        if not done or usage is None:
            raise RuntimeError("stream ended without [DONE] and usage")
        if finish not in ("stop", "length"):
            raise RuntimeError(f"finish_reason {finish!r}")
        n = usage["completion_tokens"]
        if n < 1 or n > max_tokens:
            raise RuntimeError(f"completion_tokens {n} outside [1, {max_tokens}]")
        return n
    finally:
        conn.close()


def client_loop(i, url, api_key, deadline, stats, seed):
    rng = random.Random(seed * 1000 + i)
    u = urllib.parse.urlsplit(url)
    while time.time() < deadline:
        t0 = time.time()
        try:
            n = one_request(u, api_key, rng)
            stats.success(n, time.time() - t0)
        except Exception as e:  # noqa: BLE001 - every failure is counted and reported
            stats.failure(f"{type(e).__name__}: {str(e)[:120]}")
            time.sleep(0.5)


def percentile(values, q):
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="an already running server (else one is started)")
    ap.add_argument("--pid", type=int, help="the server's pid for RSS samples (with --url)")
    ap.add_argument("--ember", help="the ember binary (default: build*/bin/ember)")
    ap.add_argument("--model", default=str(MODEL))
    ap.add_argument("--serve-args", default="-c 2048", help="extra arguments for ember serve")
    ap.add_argument("--api-key", default=os.environ.get("EMBER_API_KEY", ""))
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--sample-every", type=float, default=5, help="seconds between RSS samples")
    ap.add_argument("--max-growth", type=float, default=0.05, help="allowed RSS growth after warm-up")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", help="write the report here too")
    args = ap.parse_args()

    proc = None
    url, pid = args.url, args.pid
    if not url:
        proc, url = start_server(args)
        pid = proc.pid
    deadline = time.time() + 120
    while get(url, "/health")[0] != 200:
        if time.time() > deadline:
            sys.exit("the server never became healthy")
        time.sleep(0.2)

    load_start = os.getloadavg()
    stats = Stats()
    t_start = time.time()
    end = t_start + args.minutes * 60
    threads = [threading.Thread(target=client_loop, args=(i, url, args.api_key, end, stats, args.seed), daemon=True)
               for i in range(args.clients)]
    for t in threads:
        t.start()
    samples = []  # (seconds since start, RSS KiB, running, kv blocks used)
    while any(t.is_alive() for t in threads):
        m = metrics(url)
        kib = rss_kib(pid) if pid else None
        samples.append((time.time() - t_start, kib, m.get("ember_requests_running"), m.get("ember_kv_cache_blocks_used")))
        if len(samples) % 12 == 1:
            with stats.lock:
                print(f"t={samples[-1][0]:6.0f}s rss={kib} KiB ok={stats.ok} errors={sum(stats.errors.values())} "
                      f"running={samples[-1][2]} kv_blocks={samples[-1][3]}", flush=True)
        for t in threads:
            t.join(timeout=args.sample_every / len(threads))
    elapsed = time.time() - t_start
    load_end = os.getloadavg()

    # Everything has answered; the engine should be idle and every KV block free.
    settle = time.time() + 10
    m = metrics(url)
    while time.time() < settle and (m.get("ember_requests_running", 0) or m.get("ember_kv_cache_blocks_used", 0)):
        time.sleep(0.2)
        m = metrics(url)
    health = get(url, "/health")[0]

    rss = [(t, k) for t, k, _, _ in samples if k is not None]
    quarter = (samples[-1][0] if samples else elapsed) / 4
    first = [k for t, k in rss if t <= quarter]
    last = [k for t, k in rss if t >= 3 * quarter]
    growth = (max(last) / max(first) - 1.0) if first and last else None

    report = {
        "clients": args.clients, "minutes": args.minutes, "elapsed_s": round(elapsed, 1),
        "requests_ok": stats.ok, "requests_failed": sum(stats.errors.values()), "errors": stats.errors,
        "completion_tokens": stats.tokens, "tokens_per_s": round(stats.tokens / elapsed, 1),
        "latency_p50_s": round(percentile(stats.latencies, 0.5), 2),
        "latency_p99_s": round(percentile(stats.latencies, 0.99), 2),
        "rss_kib": {"start": rss[0][1] if rss else None, "first_quarter_peak": max(first) if first else None,
                    "last_quarter_peak": max(last) if last else None, "end": rss[-1][1] if rss else None},
        "rss_growth_after_warmup": None if growth is None else round(growth, 4),
        "rss_samples": [(round(t), k) for t, k in rss],
        "end_metrics": {k: m.get(k) for k in ("ember_requests_running", "ember_requests_waiting",
                                              "ember_kv_cache_blocks_used", "ember_kv_cache_blocks_total",
                                              "ember_kv_cache_usage_ratio", "ember_preemptions_total")},
        "health_at_end": health,
        "loadavg_start": load_start, "loadavg_end": load_end, "cpus": os.cpu_count(),
    }
    failures = []
    if report["requests_failed"]:
        failures.append(f"{report['requests_failed']} failed requests")
    if stats.ok == 0:
        failures.append("no request completed")
    if growth is None:
        failures.append("no RSS samples (pass --pid with --url)")
    elif growth >= args.max_growth:
        failures.append(f"RSS grew {growth:.1%} after warm-up (limit {args.max_growth:.0%})")
    kv_used = m.get("ember_kv_cache_blocks_used")
    if kv_used is None:
        kv_used = m.get("ember_kv_cache_usage_ratio")
    if kv_used is None:
        failures.append("no KV metric in /metrics")
    elif kv_used != 0:
        failures.append(f"KV still in use at the end ({kv_used})")
    if m.get("ember_requests_running", 0) or m.get("ember_requests_waiting", 0):
        failures.append("requests still running or waiting at the end")
    if health != 200:
        failures.append(f"/health {health} at the end")
    report["failures"] = failures

    if proc:
        proc.send_signal(signal.SIGTERM)
        try:
            report["exit_code"] = proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            report["exit_code"] = "killed after 60 s"
            failures.append("the server did not exit within 60 s of SIGTERM")
        if report["exit_code"] not in (0, "killed after 60 s"):
            failures.append(f"the server exited {report['exit_code']}")

    brief = {k: v for k, v in report.items() if k != "rss_samples"}
    print(json.dumps(brief, indent=2))
    print("RSS samples (s, KiB): " + " ".join(f"{t}:{k}" for t, k in report["rss_samples"][::max(1, len(rss) // 24)]))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(report, indent=2))
    print("PASS" if not failures else "FAIL: " + "; ".join(failures))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
