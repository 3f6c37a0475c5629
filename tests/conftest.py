"""Shared fixtures: real settings on tmp folders, real PDFs, a real embedder and store."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).parent))

from manualrag.settings import Settings  # noqa: E402
from pdfgen import sample_manual  # noqa: E402


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A real `chroma run` on 127.0.0.1, once per session (see tests/chroma_server.py)."""
    from chroma_server import ChromaServer

    server = ChromaServer(tmp_path_factory.mktemp("chroma-server") / "data").start()
    yield server
    server.stop()


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """The vector store under test: "embedded" unless a test is marked ``both_backends``."""
    return str(getattr(request, "param", "embedded"))


@pytest.fixture
def settings(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Settings:
    s = Settings(_env_file=None)
    s.store.path = tmp_path / "store"
    s.ingest.workers = 1
    if backend == "server":
        server = request.getfixturevalue("chroma_server")
        server.reset()
        s.store.chroma_url = server.url
    return s


@pytest.fixture(scope="session")
def sample_pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample_manual(tmp_path_factory.mktemp("pdfs") / "p200-controller.pdf")


@pytest.fixture(scope="session")
def embedder():  # type: ignore[no-untyped-def]
    from manualrag.settings import EmbedSettings
    from rag.embedders import get_embedder

    return get_embedder(EmbedSettings())


@pytest.fixture
def engine(settings: Settings, embedder):  # type: ignore[no-untyped-def]
    from manualrag.engine import Engine

    eng = Engine(settings)
    eng.__dict__["embedder"] = embedder  # share the session's loaded model
    yield eng
    if "store" in eng.__dict__:
        eng.store.library.close()


@pytest.fixture(scope="session")
def sample_store(tmp_path_factory: pytest.TempPathFactory, sample_pdf: Path, embedder) -> Path:  # type: ignore[no-untyped-def]
    """A store with the sample manual ingested once per session (OCR makes it the slow part)."""
    from manualrag.engine import Engine

    s = Settings(_env_file=None)
    s.store.path = tmp_path_factory.mktemp("sample-store") / "store"
    s.ingest.workers = 1
    eng = Engine(s)
    eng.__dict__["embedder"] = embedder
    (report,) = eng.ingest([sample_pdf])
    assert report.status == "ingested", f"sample manual failed to ingest: {report.error}"
    eng.store.library.close()
    return s.store.path


@pytest.fixture(scope="session")
def sample_vectors(sample_store: Path):  # type: ignore[no-untyped-def]
    """The sample store's records as Chroma holds them: (ids, embeddings, metadatas, documents)."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    client = chromadb.PersistentClient(str(sample_store / "chroma"), ChromaSettings(anonymized_telemetry=False))
    (collection,) = client.list_collections()
    got = collection.get(include=["embeddings", "metadatas", "documents"])
    return got["ids"], got["embeddings"], got["metadatas"], got["documents"]


@pytest.fixture
def ingested_engine(settings: Settings, sample_store: Path, embedder, request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """An engine over a private copy of the sample store: tests may change it freely."""
    import shutil

    from manualrag.engine import Engine

    shutil.copytree(sample_store, settings.store.path)
    eng = Engine(settings)
    eng.__dict__["embedder"] = embedder
    if settings.store.chroma_url:
        # The copy's vectors are in its embedded folder: put them on the server instead.
        shutil.rmtree(settings.store.path / "chroma")
        ids, vectors, metadatas, documents = request.getfixturevalue("sample_vectors")
        eng.store.collection.add(ids=ids, embeddings=vectors, metadatas=metadatas, documents=documents)
    yield eng
    if "store" in eng.__dict__:
        eng.store.library.close()
