"""LLM fixtures: a scripted OpenAI-format server, a refused port, a real llama.cpp server."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from llm_helpers import FakeLlm, smollm_path

from rag.local_llm import EmbeddedLlm


@pytest.fixture
def fake_llm() -> Iterator[FakeLlm]:
    server = FakeLlm()
    yield server
    server.close()


@pytest.fixture
def refused_url() -> Iterator[str]:
    """A URL on which nothing listens: the port is bound (so no one else takes it) but not listening."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{s.getsockname()[1]}/v1"


# -- the real llama.cpp server ------------------------------------------------------------------


@pytest.fixture(scope="session")
def smollm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedLlm]:
    """A real llama.cpp server with SmolLM2-135M, started once for the session."""
    # One thread: on a busy 2-core CI box two OpenMP threads spin against the other
    # work and run several times slower (measured: 3 tok/s against 43 tok/s).
    server = EmbeddedLlm(
        smollm_path(),
        tmp_path_factory.mktemp("llm-runtime"),
        context_tokens=2048,
        threads=1,
        start_timeout_s=60,
    )
    server.start()
    yield server
    server.close()
