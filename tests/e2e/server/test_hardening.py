"""Hostile input against `ember serve`: each case gets its documented status and OpenAI error
shape, and afterwards /health is 200 and a small completion still works."""
import http.client
import json
import signal
import socket
import threading
import time

import pytest

from conftest import ServerProcess

N_VOCAB = 49152  # SmolLM2-135M


@pytest.fixture(scope="module")
def hs():
    s = ServerProcess("--max-body-mib", "1")
    yield s
    s.stop()


def assert_healthy(s):
    assert s.proc.poll() is None, "the server exited:\n" + "".join(s.log[-20:])
    assert s.get("/health", timeout=10)[0] == 200
    status, text, _ = s.post("/v1/completions", {"prompt": "Hello", "max_tokens": 2}, key=None, timeout=30)
    assert status == 200, text
    assert json.loads(text)["usage"]["completion_tokens"] >= 1


def assert_error(status, text, want_status, param=None):
    assert status == want_status, text
    err = json.loads(text)["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["message"]
    assert err["type"] == {400: "invalid_request_error", 413: "invalid_request_error",
                           503: "service_unavailable_error"}[want_status]
    if param is not None:
        assert err["param"] == param, err


def raw_post(s, path, body: bytes, timeout=30):
    conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=timeout)
    try:
        conn.request("POST", path, body, {"Content-Type": "application/json"})
        r = conn.getresponse()
        return r.status, r.read().decode("utf-8", "replace")
    finally:
        conn.close()


def test_oversized_body(hs):
    big = json.dumps({"prompt": "x" * (2 << 20), "max_tokens": 1}).encode()
    assert_error(*raw_post(hs, "/v1/completions", big), 413)
    assert_healthy(hs)


def test_huge_content_length_not_sent(hs):
    # Declares 1 TB and sends nothing: refused at once from the header, nothing is buffered.
    with socket.create_connection(("127.0.0.1", hs.port), timeout=10) as sock:
        sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000000000000\r\n\r\n")
        head = sock.recv(4096).decode("latin-1")
    assert head.startswith("HTTP/1.1 413"), head
    assert_healthy(hs)


@pytest.mark.parametrize("depth", [1000, 100000])
def test_deeply_nested_json(hs, depth):
    for doc in ('{"prompt": ' + "[" * depth + "]" * depth + ', "max_tokens": 1}',
                '{"messages": [{"role": "user", "content": ' + '{"a":' * depth + "1" + "}" * depth + "}]}",
                "[" * depth):  # unterminated
        path = "/v1/chat/completions" if "messages" in doc else "/v1/completions"
        assert_error(*raw_post(hs, path, doc.encode()), 400)
    assert_healthy(hs)


@pytest.mark.parametrize("body", [
    b'{"prompt": "\xff\xfe\xfd", "max_tokens": 1}',
    b'{"prompt": "ok\xc3", "max_tokens": 1}',                   # truncated sequence
    b'{"prompt": "\xed\xa0\x80", "max_tokens": 1}',            # UTF-8-encoded surrogate
    b'{"prompt": "\xc0\xaf", "max_tokens": 1}',                # overlong '/'
    b'{"prompt": "\\ud800", "max_tokens": 1}',                 # lone surrogate escape
    b'{"messages": [{"role": "user", "content": "\xf8\x88\x80\x80\x80"}]}',
])
def test_invalid_utf8(hs, body):
    path = "/v1/chat/completions" if b"messages" in body else "/v1/completions"
    assert_error(*raw_post(hs, path, body), 400)
    assert_healthy(hs)


def test_invalid_utf8_tokenize_and_detokenize(hs):
    assert_error(*raw_post(hs, "/tokenize", b'{"prompt": "\xff"}'), 400)
    status, text = raw_post(hs, "/detokenize", json.dumps({"tokens": [N_VOCAB]}).encode())
    assert_error(status, text, 400)
    assert_healthy(hs)


BAD_NUMBERS = [-1, 0, -(2 ** 63), 2 ** 63, 2 ** 64, 10 ** 30, 1.5, 1e308, "8", [], {}]


@pytest.mark.parametrize("value", BAD_NUMBERS)
@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
def test_bad_max_tokens(hs, field, value):
    for path, body in (("/v1/completions", {"prompt": "Hi"}),
                       ("/v1/chat/completions", {"messages": [{"role": "user", "content": "Hi"}]})):
        status, text, _ = hs.post(path, {**body, field: value}, key=None)
        assert_error(status, text, 400, field)
    assert_healthy(hs)


@pytest.mark.parametrize("value", [-1, 0, 17, 2 ** 31, 2 ** 63, 10 ** 30, 2.5, "2"])
def test_bad_n(hs, value):
    status, text, _ = hs.post("/v1/completions", {"prompt": "Hi", "max_tokens": 1, "n": value}, key=None)
    assert_error(status, text, 400, "n")
    assert_healthy(hs)


@pytest.mark.parametrize("value", [-1, 21, 2 ** 31, 10 ** 30, 1.5, "3"])
def test_bad_top_logprobs(hs, value):
    body = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1, "logprobs": True, "top_logprobs": value}
    assert_error(*hs.post("/v1/chat/completions", body, key=None)[:2], 400, "top_logprobs")
    body = {"prompt": "Hi", "max_tokens": 1, "logprobs": value if value != 21 else 6}
    assert_error(*hs.post("/v1/completions", body, key=None)[:2], 400, "logprobs")
    assert_healthy(hs)


@pytest.mark.parametrize("tokens", [[N_VOCAB], [1, 2, N_VOCAB + 1000], [2 ** 31 - 1], [-1], [2 ** 31], [2 ** 63],
                                    [1, "2"], [1, 2.5]])
def test_out_of_vocab_prompt_tokens(hs, tokens):
    for extra in ({}, {"stream": True}, {"echo": True}):
        status, text, _ = hs.post("/v1/completions", {"prompt": tokens, "max_tokens": 1, **extra}, key=None)
        assert_error(status, text, 400, "prompt")
    assert_healthy(hs)


@pytest.mark.parametrize("bias", [{str(N_VOCAB): 5}, {str(2 ** 31 - 1): 1}, {"-1": 1}, {"abc": 1}, {"1e3": 1},
                                  {"": 1}, {str(2 ** 64): 1}, {"5": 1000}, {"5": "high"}, {"5": None}, [1, 2]])
def test_bad_logit_bias(hs, bias):
    for path, body in (("/v1/completions", {"prompt": "Hi"}),
                       ("/v1/chat/completions", {"messages": [{"role": "user", "content": "Hi"}]})):
        status, text, _ = hs.post(path, {**body, "max_tokens": 1, "logit_bias": bias}, key=None)
        assert_error(status, text, 400, "logit_bias")
    assert_healthy(hs)


def timed_completion(s):
    t0 = time.time()
    status, text, _ = s.post("/v1/completions", {"prompt": "Hi", "max_tokens": 2}, key=None, timeout=30)
    assert status == 200, text
    return time.time() - t0


def test_slowloris_does_not_block_others_and_a_stalled_client_is_dropped(hs):
    stop = threading.Event()
    trickle_socks = []

    def trickle():
        sock = socket.create_connection(("127.0.0.1", hs.port), timeout=30)
        trickle_socks.append(sock)
        header = b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000
        try:
            for byte in header:
                if stop.is_set():
                    return
                sock.sendall(bytes([byte]))
                time.sleep(1)
        except OSError:
            pass

    threads = [threading.Thread(target=trickle, daemon=True) for _ in range(8)]
    for t in threads:
        t.start()
    stalled = socket.create_connection(("127.0.0.1", hs.port), timeout=30)
    stalled.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n")  # then silence
    try:
        time.sleep(2)
        for _ in range(3):
            assert timed_completion(hs) < 10
        # The silent client is dropped by the server's read timeout.
        t0 = time.time()
        stalled.settimeout(20)
        try:
            data = stalled.recv(4096)
        except ConnectionResetError:
            data = b""
        assert time.time() - t0 < 15
        assert data == b"" or data.startswith(b"HTTP/1.1 4"), data
    finally:
        stop.set()
        stalled.close()
        for sock in trickle_socks:
            sock.close()
    assert_healthy(hs)


def test_many_idle_connections_do_not_starve_new_requests(hs):
    # Each idle socket holds a pool thread until the keep-alive timeout (2 s); the listen
    # backlog (1024, not httplib's 5) lets the burst connect without SYN retries.
    t0 = time.time()
    idle = [socket.create_connection(("127.0.0.1", hs.port), timeout=10) for _ in range(200)]
    try:
        assert time.time() - t0 < 5
        time.sleep(0.5)
        assert timed_completion(hs) < 8
        assert hs.get("/health", timeout=10)[0] == 200
    finally:
        for sock in idle:
            sock.close()
    assert_healthy(hs)


def test_sigterm_under_streaming_load():
    s = ServerProcess()
    results = [None] * 8

    def stream(i):
        conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=60)
        try:
            conn.request("POST", "/v1/completions",
                         json.dumps({"prompt": f"Story {i}:", "max_tokens": 24, "ignore_eos": True, "stream": True}),
                         {"Content-Type": "application/json"})
            r = conn.getresponse()
            body = r.read().decode()
            results[i] = (r.status, body)
        except (OSError, http.client.HTTPException) as e:
            results[i] = (0, repr(e))
        finally:
            conn.close()

    threads = [threading.Thread(target=stream, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    deadline = time.time() + 20
    while time.time() < deadline:
        status, text, _ = s.get("/metrics")
        if status == 200 and "ember_generation_tokens_total" in text:
            line = next(l for l in text.splitlines() if l.startswith("ember_generation_tokens_total"))
            if float(line.split()[-1]) > 0:
                break
        time.sleep(0.05)
    t_sig = time.time()
    s.proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    # New requests are refused: 503 while draining, or the connection is refused once closed.
    status, text, _ = s.post("/v1/completions", {"prompt": "late", "max_tokens": 1}, key=None, timeout=10)
    assert status in (0, 503), (status, text)
    if status == 503:
        assert_error(status, text, 503)
    for t in threads:
        t.join(60)
    assert s.proc.wait(30) == 0
    assert time.time() - t_sig < 30
    for status, body in results:
        # In flight when the signal came: finished to the end of its stream (usage + [DONE]).
        assert status == 200, body
        assert body.rstrip().endswith("data: [DONE]"), body[-300:]
