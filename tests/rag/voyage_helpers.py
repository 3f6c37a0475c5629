"""A local stand-in for Voyage's multimodal embeddings endpoint, on 127.0.0.1.

It speaks the wire format (POST /v1/multimodalembeddings, Bearer key, inputs of
text / image_base64 content parts) and records every request, so tests check the
request shape, batching and retries of the real client. Vectors are deterministic:
words are hashed into a bag-of-words (so related texts are close), an image's
vector is seeded by its decoded pixels (so the same picture always matches itself).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

KEY = "vk-test-0123456789abcdef"


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # an error body; None: embeddings
    headers: dict[str, str] = field(default_factory=dict)


def _text_vector(text: str, dim: int) -> np.ndarray:
    vec = np.zeros(dim, dtype=np.float32)
    for word in text.lower().split():
        vec[int(hashlib.sha256(word.strip(".,;:()").encode()).hexdigest(), 16) % dim] += 1.0
    return vec


def _image_vector(data_url: str, dim: int) -> np.ndarray:
    from PIL import Image

    raw = base64.b64decode(data_url.split(",", 1)[1])
    with Image.open(io.BytesIO(raw)) as img:
        pixels = img.convert("RGB").tobytes()
    seed = int(hashlib.sha256(pixels).hexdigest()[:8], 16)
    return np.random.default_rng(seed).normal(size=dim).astype(np.float32)


class FakeVoyage:
    def __init__(self) -> None:
        self.script: list[Reply] = []
        self.requests: list[dict[str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                fake.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                      "body": body})
                reply = fake.script.pop(0) if fake.script else Reply()
                if self.headers.get("authorization") != f"Bearer {KEY}":
                    reply = Reply(401, {"detail": "Provided API key is invalid."})
                if reply.status != 200 or self.path != "/v1/multimodalembeddings":
                    self._send(reply.status if reply.status != 200 else 404, reply.body or {"detail": "no"},
                               reply.headers)
                    return
                dim = int(body.get("output_dimension") or 1024)
                data = []
                for i, item in enumerate(body["inputs"]):
                    vec = np.zeros(dim, dtype=np.float32)
                    for part in item["content"]:
                        if part["type"] == "text":
                            vec += _text_vector(part["text"], dim)
                        else:
                            vec += _image_vector(part["image_base64"], dim)
                    data.append({"object": "embedding", "embedding": vec.tolist(), "index": i})
                data.reverse()  # the client must order by "index", not by position
                self._send(200, {"object": "list", "data": data, "model": body["model"],
                                 "usage": {"total_tokens": 1}}, {})

            def _send(self, status: int, payload: object, headers: dict[str, str]) -> None:
                raw = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(raw)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
