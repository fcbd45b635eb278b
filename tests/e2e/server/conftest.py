"""Fixtures: a real `ember serve` process on 127.0.0.1 (any free port) with SmolLM2-135M."""
import json
import os
import pathlib
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
MODEL = pathlib.Path(os.environ.get("EMBER_MODELS_DIR", ROOT / "models")) / "SmolLM2-135M-Instruct.Q4_1.gguf"
API_KEY = "sk-ember-test"


def ember_bin():
    path = os.environ.get("EMBER_BIN")
    if path:
        return path
    for build in ("build", "build-server"):
        candidate = ROOT / build / "bin" / "ember"
        if candidate.exists():
            return str(candidate)
    pytest.skip("EMBER_BIN is not set and no built ember was found")


def require_model():
    if not MODEL.exists():
        if os.environ.get("EMBER_REQUIRE_MODELS") == "1":
            pytest.fail(f"{MODEL} is missing (EMBER_REQUIRE_MODELS=1)")
        pytest.skip(f"{MODEL} is missing")


class ServerProcess:
    def __init__(self, *extra):
        require_model()
        args = [ember_bin(), "serve", "-m", str(MODEL), "--port", "0", "-c", "2048", "--cpu", *extra]
        self.proc = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        self.log = []
        self.port = None
        ready = threading.Event()

        def read():
            for line in self.proc.stderr:
                self.log.append(line)
                if "listening on http://" in line:
                    self.port = int(line.split("http://", 1)[1].split()[0].rsplit(":", 1)[1])
                    ready.set()
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(30) or self.port is None:
            self.stop()
            raise RuntimeError("ember serve did not start:\n" + "".join(self.log))
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.get("/health")[0] == 200:
                return
            time.sleep(0.1)
        raise RuntimeError("ember serve did not become healthy:\n" + "".join(self.log))

    def request(self, method, path, body=None, headers=None, timeout=120):
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers or {})
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read().decode(), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(), dict(e.headers)
        except (ConnectionError, urllib.error.URLError):
            return 0, "", {}

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body, key=API_KEY, **kw):
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return self.request("POST", path, body, headers=headers, **kw)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="session")
def server():
    s = ServerProcess("--api-key", API_KEY, "--served-model-name", "smollm2")
    yield s
    s.stop()


@pytest.fixture(scope="session")
def client(server):
    openai = pytest.importorskip("openai")
    return openai.OpenAI(base_url=server.base + "/v1", api_key=API_KEY, max_retries=0, timeout=120)
