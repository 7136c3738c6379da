"""Fixtures for the judge tests: a tiny judge model, a real `transformers serve` process, and a
fault-injecting HTTP proxy to put in front of it."""

from __future__ import annotations

import hashlib
import http.client
import json
import random
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from audiothinker.judge.tiny import ServeProcess, build_tiny_judge


@pytest.fixture(scope="session")
def tiny_judge_dir(tmp_path_factory):
    """A tiny random Qwen2 wired to answer "1" (so R_c = 1.0, R_t = 0.1), with a locally trained tokenizer."""
    return build_tiny_judge(tmp_path_factory.mktemp("tiny_judge") / "model", answer="1")


@pytest.fixture(scope="session")
def judge_server(tiny_judge_dir):
    """`transformers serve` on loopback serving the tiny judge; stopped at the end of the session."""
    server = ServeProcess(tiny_judge_dir, startup_timeout=120).start()
    yield server
    server.stop()


@dataclass
class Faults:
    """What the proxy does to requests. Shares are probabilities per request (seeded);
    `fail_first` fails the first N attempts of every distinct request body with `fail_mode`."""

    delay: float = 0.0
    error500: float = 0.0
    drop: float = 0.0
    garbage: float = 0.0
    delay_s: float = 0.5
    status: int | None = None  # answer every request with this status (no forwarding)
    echo_auth: bool = False  # put the Authorization header in the error body (a careless server)
    echo_pad: int = 0  # characters of filler before the echoed header (to straddle a truncation point)
    fail_first: int = 0
    fail_mode: str = "500"  # 500 | drop | garbage | delay
    seed: int = 0
    rng: random.Random = field(init=False)

    def __post_init__(self):
        self.rng = random.Random(self.seed)


class FaultProxy:
    """HTTP proxy to `upstream` that injects `faults`; counts what it receives."""

    def __init__(self, upstream_port: int, faults: Faults | None = None):
        self.upstream_port = upstream_port
        self.faults = faults or Faults()
        self.lock = threading.Lock()
        self.received: list[str] = []  # paths, one per request
        self.auth_headers: set[str] = set()
        self.attempts: dict[str, int] = {}
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                proxy.handle(self, b"")

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                proxy.handle(self, self.rfile.read(n))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def count(self, path_suffix: str = "/completions") -> int:
        with self.lock:
            return sum(p.endswith(path_suffix) for p in self.received)

    def _decide(self, body: bytes) -> str | None:
        f = self.faults
        with self.lock:
            if f.fail_first:
                key = hashlib.sha1(body).hexdigest()
                self.attempts[key] = self.attempts.get(key, 0) + 1
                if self.attempts[key] <= f.fail_first:
                    return f.fail_mode
            r = f.rng.random()
        for mode, share in (("delay", f.delay), ("500", f.error500), ("drop", f.drop), ("garbage", f.garbage)):
            if r < share:
                return mode
            r -= share
        return None

    def handle(self, h: BaseHTTPRequestHandler, body: bytes) -> None:
        with self.lock:
            self.received.append(h.path)
            if h.headers.get("Authorization"):
                self.auth_headers.add(h.headers["Authorization"])
        f = self.faults
        if f.status is not None and h.path.endswith("/completions"):
            detail = f"rejected;{' ' * f.echo_pad} you sent {h.headers.get('Authorization')}" if f.echo_auth else "rejected by test proxy"
            return self._reply(h, f.status, json.dumps({"error": {"message": detail, "type": "invalid_request_error"}}).encode())
        mode = self._decide(body) if h.path.endswith("/completions") else None
        if mode == "drop":
            h.close_connection = True
            return  # the socket closes without a response
        if mode == "500":
            return self._reply(h, 500, b'{"error": {"message": "injected failure"}}')
        if mode == "garbage":
            return self._reply(h, 200, b"\x00\xffnot json {{{")
        if mode == "delay":
            time.sleep(f.delay_s)
        conn = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=60)
        headers = {k: v for k, v in h.headers.items() if k.lower() in ("content-type", "authorization", "accept")}
        conn.request(h.command, h.path, body=body or None, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        self._reply(h, resp.status, data, resp.getheader("Content-Type", "application/json"))

    @staticmethod
    def _reply(h: BaseHTTPRequestHandler, status: int, data: bytes, ctype: str = "application/json") -> None:
        try:
            h.send_response(status)
            h.send_header("Content-Type", ctype)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
        except OSError:  # the client gave up (timeout) first
            pass

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fault_proxy(judge_server):
    """A factory: `fault_proxy(**Faults fields)` starts a proxy in front of the judge server."""
    proxies = []

    def make(**faults) -> FaultProxy:
        p = FaultProxy(judge_server.port, Faults(**faults))
        proxies.append(p)
        return p

    yield make
    for p in proxies:
        p.close()
