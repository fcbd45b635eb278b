"""Continuous batching and the paged KV cache of `ember serve` (CPU, SmolLM2), through the
official openai client: temperature-0 output is the same alone and in a batch, many
concurrent streams all complete without memory growth, disconnects free every KV block,
and preemption in a tiny KV cache keeps outputs right."""
import concurrent.futures as futures
import http.client
import json
import threading
import time

import pytest

from conftest import API_KEY, ServerProcess

openai = pytest.importorskip("openai")
parser = pytest.importorskip("prometheus_client.parser")

PROMPTS = [
    "The capital of France is",
    "Once upon a time, in a small village by the sea, there lived",
    "def fibonacci(n):",
    "List three colours:",
    "Water boils at one hundred degrees Celsius at sea level, and it freezes at",
    "The quick brown fox",
    "In mathematics, a prime number is a natural number greater than one that",
    "Dear team,",
]


def metrics(server):
    status, text, _ = server.get("/metrics")
    assert status == 200
    out = {}
    for family in parser.text_string_to_metric_families(text):
        for sample in family.samples:
            out[sample.name] = sample.value
    return out


def client_for(server):
    return openai.OpenAI(base_url=server.base + "/v1", api_key=API_KEY, max_retries=0, timeout=300)


def complete(client, prompt, max_tokens=20, **kw):
    r = client.completions.create(model="smollm2", prompt=prompt, max_tokens=max_tokens, **kw)
    return r.choices[0].text, r.choices[0].finish_reason, r.usage


def wait_idle(server, timeout=15):
    """Polls /metrics until nothing runs, waits or holds a KV block; returns the last sample."""
    deadline = time.time() + timeout
    while True:
        m = metrics(server)
        idle = (m["ember_requests_running"] == 0 and m["ember_requests_waiting"] == 0
                and m["ember_kv_cache_blocks_used"] == 0)
        if idle or time.time() > deadline:
            return m
        time.sleep(0.1)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def batch_server():
    s = ServerProcess("--api-key", API_KEY, "--max-seqs", "16", "--max-queue", "128")
    yield s
    s.stop()


def test_metrics_show_a_paged_cache(batch_server):
    m = wait_idle(batch_server)
    assert m["ember_kv_cache_blocks_total"] > 0
    assert m["ember_kv_cache_blocks_used"] == 0
    assert any("continuous batching" in line for line in batch_server.log)


def test_temperature_zero_same_alone_and_in_a_batch_of_16(batch_server):
    client = client_for(batch_server)
    greedy = [(PROMPTS[i % len(PROMPTS)] + " " * (i // len(PROMPTS)), 8 + 3 * i) for i in range(10)]
    alone = [complete(client, p, n, temperature=0) for p, n in greedy]
    # The same 10 greedy requests among 6 sampled ones, all at once.
    jobs = [("greedy", i, p, n) for i, (p, n) in enumerate(greedy)]
    jobs += [("sampled", i, PROMPTS[i], 30) for i in range(6)]
    with futures.ThreadPoolExecutor(len(jobs)) as pool:
        def run(job):
            kind, i, p, n = job
            if kind == "greedy":
                return job, complete(client, p, n, temperature=0)
            return job, complete(client, p, n, temperature=1.0, top_p=0.9, seed=i)
        results = list(pool.map(run, reversed(jobs)))
    peak_seen = False
    for (kind, i, _, n), (text, reason, usage) in results:
        if kind == "greedy":
            assert text == alone[i][0], f"request {i} differs in a batch"
            assert reason == alone[i][1]
        else:
            assert usage.completion_tokens <= n and reason in ("stop", "length")
            peak_seen = True
    assert peak_seen
    m = wait_idle(batch_server)
    assert m["ember_kv_cache_blocks_used"] == 0 and m["ember_requests_running"] == 0


def test_seeded_sampling_same_alone_and_in_a_batch(batch_server):
    client = client_for(batch_server)
    kw = dict(temperature=0.9, top_p=0.95, seed=1234)
    alone = complete(client, PROMPTS[1], 24, **kw)[0]
    with futures.ThreadPoolExecutor(8) as pool:
        texts = list(pool.map(lambda p: complete(client, p, 24, **kw)[0], [PROMPTS[1]] * 4 + PROMPTS[2:6]))
    assert texts[:4] == [alone] * 4


def stream_one(client, i, max_tokens):
    stream = client.completions.create(model="smollm2", prompt=PROMPTS[i % len(PROMPTS)] + f" ({i})",
                                       max_tokens=max_tokens, temperature=0.7, seed=i, stream=True,
                                       stream_options={"include_usage": True})
    pieces, finish, usage = [], None, None
    for chunk in stream:
        if chunk.choices:
            pieces.append(chunk.choices[0].text)
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage:
            usage = chunk.usage
    return "".join(pieces), finish, usage


def test_64_concurrent_streams_complete_without_memory_growth(batch_server):
    client = openai.OpenAI(base_url=batch_server.base + "/v1", api_key=API_KEY, max_retries=0, timeout=600)
    pid = batch_server.proc.pid
    n_clients, max_tokens = 64, 24
    rss, errors, done = [], [], threading.Event()

    def sample_rss():
        while not done.is_set():
            rss.append(rss_kib(pid))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample_rss)
    sampler.start()
    try:
        with futures.ThreadPoolExecutor(n_clients) as pool:
            jobs = [pool.submit(stream_one, client, i, max_tokens) for i in range(n_clients)]
            for job in jobs:
                try:
                    text, finish, usage = job.result()
                    assert usage is not None and finish in ("stop", "length"), (finish, usage)
                    assert finish == "stop" or usage.completion_tokens == max_tokens, usage
                    assert text or finish == "stop"
                except Exception as e:  # noqa: BLE001 - every failure is counted
                    errors.append(repr(e))
    finally:
        done.set()
        sampler.join()
    assert not errors, errors[:5]
    quarter = max(1, len(rss) // 4)
    first, last = sum(rss[:quarter]) / quarter, sum(rss[-quarter:]) / quarter
    assert (last - first) / first < 0.05, f"RSS grew from {first:.0f} to {last:.0f} KiB ({len(rss)} samples)"
    m = wait_idle(batch_server)
    assert m["ember_kv_cache_blocks_used"] == 0 and m["ember_requests_running"] == 0


def test_50_early_disconnects_free_every_block(batch_server):
    before = metrics(batch_server)["ember_generation_tokens_total"]
    conns = []
    body = json.dumps({"prompt": "Tell a long story about a dragon.", "max_tokens": 400, "ignore_eos": True,
                       "stream": True})
    for _ in range(50):
        c = http.client.HTTPConnection("127.0.0.1", batch_server.port, timeout=60)
        c.request("POST", "/v1/completions", body, {"Authorization": f"Bearer {API_KEY}",
                                                    "Content-Type": "application/json"})
        conns.append(c)
    try:
        for c in conns:
            resp = c.getresponse()
            assert resp.status == 200
            assert resp.read(6) in (b"data: ", b": keep")  # a token, or a keep-alive while queued
        m = metrics(batch_server)
        assert m["ember_requests_running"] + m["ember_requests_waiting"] == 50, m
        # The stats are published after each engine step: wait for the first step to end.
        deadline = time.time() + 60
        while m["ember_kv_cache_blocks_used"] == 0 and time.time() < deadline:
            time.sleep(0.1)
            m = metrics(batch_server)
        assert m["ember_kv_cache_blocks_used"] > 0, m
    finally:
        for c in conns:
            if c.sock is not None:
                c.sock.close()
            c.close()
    m = wait_idle(batch_server, timeout=20)
    assert m["ember_requests_running"] == 0, m
    assert m["ember_requests_waiting"] == 0, m
    assert m["ember_kv_cache_blocks_used"] == 0, m
    assert m["ember_generation_tokens_total"] - before < 50 * 400 / 2  # stopped well before max_tokens


def test_preemption_in_a_tiny_kv_cache_keeps_temperature_zero_output(batch_server):
    # ~14 blocks of 16 tokens for 8 requests of ~60 tokens each: preemption is needed.
    tiny = ServerProcess("--api-key", API_KEY, "--max-seqs", "8", "--kv-cache-gb", "0.01")
    try:
        reference = client_for(batch_server)
        client = client_for(tiny)
        prompts = PROMPTS[:8]
        alone = [complete(reference, p, 48, temperature=0, extra_body={"ignore_eos": True}) for p in prompts]
        with futures.ThreadPoolExecutor(len(prompts)) as pool:
            got = list(pool.map(lambda p: complete(client, p, 48, temperature=0, extra_body={"ignore_eos": True}),
                                prompts))
        for i, (text, reason, usage) in enumerate(got):
            assert text == alone[i][0], f"request {i} differs after preemption"
            assert usage.completion_tokens == 48
        m = wait_idle(tiny)
        assert m["ember_preemptions_total"] > 0
        assert m["ember_kv_cache_blocks_used"] == 0
        # A prompt bigger than the whole cache is an error, not a hang or a crash.
        status, text, _ = tiny.post("/v1/completions", {"prompt": "word " * 400, "max_tokens": 4})
        assert status == 500 and "KV cache is too small" in json.loads(text)["error"]["message"]
        assert complete(client, "Hello", 4, temperature=0)[2].completion_tokens == 4
    finally:
        tiny.stop()
