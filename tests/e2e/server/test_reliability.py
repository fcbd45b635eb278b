"""Limits, metrics, disconnects and shutdown of `ember serve`."""
import http.client
import json
import signal
import threading
import time

import pytest

from conftest import API_KEY, ServerProcess


def metrics(server):
    parser = pytest.importorskip("prometheus_client.parser")
    status, text, _ = server.get("/metrics")
    assert status == 200
    return {f.name: f for f in parser.text_string_to_metric_families(text)}


def value(families, name, suffix=""):
    return next(s.value for s in families[name].samples if s.name == name + suffix)


def test_metrics_parse(server):
    server.post("/v1/completions", {"prompt": "Hi", "max_tokens": 3})
    m = metrics(server)
    for name in ("ember_requests_running", "ember_requests_waiting", "ember_kv_cache_usage_ratio",
                 "ember_preemptions"):
        assert name in m
    assert m["ember_prompt_tokens"].type == "counter" and value(m, "ember_prompt_tokens", "_total") > 0
    assert value(m, "ember_generation_tokens", "_total") > 0
    ttft = m["ember_time_to_first_token_seconds"]
    assert ttft.type == "histogram"
    assert next(s.value for s in ttft.samples if s.name.endswith("_count")) >= 1
    assert m["ember_inter_token_latency_seconds"].type == "histogram"


def test_disconnect_cancels(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    body = json.dumps({"prompt": "Tell a long story.", "max_tokens": 1500, "ignore_eos": True, "stream": True})
    conn.request("POST", "/v1/completions", body, {"Authorization": f"Bearer {API_KEY}",
                                                  "Content-Type": "application/json"})
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.read(6) == b"data: "
    before = value(metrics(server), "ember_generation_tokens", "_total")
    conn.sock.close()
    conn.close()
    deadline = time.time() + 15
    while time.time() < deadline:
        m = metrics(server)
        if value(m, "ember_requests_running") == 0 and value(m, "ember_requests_waiting") == 0:
            break
        time.sleep(0.2)
    assert value(m, "ember_requests_running") == 0 and value(m, "ember_requests_waiting") == 0
    assert value(m, "ember_generation_tokens", "_total") - before < 1000  # stopped well before max_tokens


@pytest.fixture(scope="module")
def small_server():
    s = ServerProcess("--max-queue", "1", "--max-body-mib", "1")
    yield s
    s.stop()


def test_body_too_large(small_server):
    big = json.dumps({"prompt": "x" * (2 << 20), "max_tokens": 1}).encode()
    status, text, _ = small_server.post("/v1/completions", big, key=None)
    assert status == 413
    assert json.loads(text)["error"]["message"]


def test_queue_full_gives_429(small_server):
    results = []

    def one():
        results.append(small_server.post("/v1/completions", {"prompt": "Count:", "max_tokens": 40,
                                                             "ignore_eos": True}, key=None))

    threads = [threading.Thread(target=one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(r[0] for r in results)
    assert 200 in codes and 429 in codes, codes
    rejected = next(r for r in results if r[0] == 429)
    assert rejected[2].get("Retry-After") and json.loads(rejected[1])["error"]["type"] == "rate_limit_error"


def test_sigterm_drains_in_flight():
    s = ServerProcess()
    result = []
    t = threading.Thread(target=lambda: result.append(
        s.post("/v1/completions", {"prompt": "Once upon a time", "max_tokens": 40, "ignore_eos": True}, key=None)))
    t.start()
    deadline = time.time() + 10
    while time.time() < deadline and value(metrics(s), "ember_requests_running") == 0:
        time.sleep(0.05)
    s.proc.send_signal(signal.SIGTERM)
    t.join(60)
    assert s.proc.wait(60) == 0
    assert result and result[0][0] == 200
    assert json.loads(result[0][1])["usage"]["completion_tokens"] == 40
