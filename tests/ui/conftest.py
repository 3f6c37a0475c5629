"""Fixtures for the browser app: a real store ingested once, real LLM servers, an AppTest builder."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from uihelpers import APP, RUN_TIMEOUT, STAFF_PASSWORD, FakeLlm, smollm_path


@pytest.fixture
def fake_llm() -> Iterator[Any]:
    server = FakeLlm()
    yield server
    server.close()


@pytest.fixture(scope="session")
def smollm_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real llama.cpp server with SmolLM2-135M for the session; its /v1 URL."""
    from rag.local_llm import EmbeddedLlm

    server = EmbeddedLlm(
        smollm_path(), tmp_path_factory.mktemp("ui-llm"), context_tokens=2048, threads=1, start_timeout_s=90
    )
    server.start()
    yield server.base_url
    server.close()


@pytest.fixture(scope="session")
def sample_store(tmp_path_factory: pytest.TempPathFactory, sample_pdf: Path, embedder: Any) -> Path:
    """A store holding the 7-page sample manual, ingested once by the real engine. Read-only:
    tests that change the library copy it (`store_copy`)."""
    from manualrag.engine import Engine
    from manualrag.settings import Settings

    settings = Settings(_env_file=None)
    settings.store.path = tmp_path_factory.mktemp("ui-store") / "store"
    settings.ingest.workers = 1
    engine = Engine(settings)
    engine.__dict__["embedder"] = embedder
    report = engine.ingest_upload(sample_pdf.read_bytes(), "p200-controller.pdf")
    assert report.status == "ingested", f"the sample manual should ingest, got {report}"
    engine.store.library.close()
    return settings.store.path


@pytest.fixture
def store_copy(sample_store: Path, tmp_path: Path) -> Path:
    """A private copy of the sample store, for tests that upload, remove or rate."""
    target = tmp_path / "store"
    shutil.copytree(sample_store, target, ignore=shutil.ignore_patterns("app.db*", "write.lock"))
    return target


@pytest.fixture
def make_app(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """`make_app(store, llm_url, **ui_env)`: an AppTest of ui/app.py configured through the environment,
    exactly as `manualrag serve` configures the real app."""
    from streamlit.testing.v1 import AppTest

    def build(store: Path, llm_url: str, **env: str) -> AppTest:
        for key in list(os.environ):
            if key.startswith("MANUALRAG_"):
                monkeypatch.delenv(key)
        monkeypatch.setenv("MANUALRAG_STORE__PATH", str(store))
        monkeypatch.setenv("MANUALRAG_LLM__BASE_URL", llm_url)
        monkeypatch.setenv("MANUALRAG_LLM__MAX_TOKENS", "24")
        monkeypatch.setenv("MANUALRAG_LLM__PROMPT_TOKENS", "400")  # SmolLM2 on a busy CPU reads ~30 tokens/s
        monkeypatch.setenv("MANUALRAG_LLM__TEMPERATURE", "0")
        monkeypatch.setenv("MANUALRAG_LLM__MAX_RETRIES", "0")
        monkeypatch.setenv("MANUALRAG_INGEST__WORKERS", "1")
        monkeypatch.setenv("MANUALRAG_UI__STAFF_PASSWORD", STAFF_PASSWORD)
        for key, value in env.items():
            monkeypatch.setenv(f"MANUALRAG_UI__{key.upper()}", value)
        return AppTest.from_file(str(APP), default_timeout=RUN_TIMEOUT)

    return build
