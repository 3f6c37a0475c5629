"""The store on real Chroma (embedded, and a `chroma run` server): generations, replace, remove, crash recovery."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from chroma_server import both_backends

from manualrag.errors import StoreError
from manualrag.settings import Settings
from manualrag.types import ManualInfo, Record
from rag.store import Store


def _vectors(n: int, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, 8)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _write(store: Store, name: str, texts: list[str], commit: bool = True, seed: int = 0) -> str:
    gen = store.begin(name)
    records = [Record(id=f"{gen[:8]}-{i}", manual=name, page=i + 1, kind="text", text=t) for i, t in enumerate(texts)]
    store.add(gen, records, _vectors(len(records), seed))
    if commit:
        store.commit(ManualInfo(name=name, sha256=gen, ingest_id=gen, pdf_path="manuals/none.pdf", chunks=len(texts)))
    return gen


@both_backends
def test_pending_generation_is_invisible_to_dense_search(settings: Settings) -> None:
    store = Store(settings, "test-embedder")
    gen = _write(store, "a.pdf", ["one", "two", "three"], commit=False)
    assert store.visible_ids() == []
    assert store.dense(_vectors(1)[0], store.visible_ids(), 5) == []
    assert store.count() == 3, "records are written before commit, only hidden"
    store.commit(ManualInfo(name="a.pdf", sha256="s", ingest_id=gen, pdf_path="manuals/none.pdf"))
    found = store.dense(_vectors(3)[0], store.visible_ids(), 5)
    assert found[0][0] == f"{gen[:8]}-0" and abs(found[0][1] - 1.0) < 1e-4, f"exact vector should rank first: {found}"


@both_backends
def test_replace_then_remove_leaves_no_records(settings: Settings) -> None:
    store = Store(settings, "test-embedder")
    _write(store, "a.pdf", ["old one", "old two"])
    new = _write(store, "a.pdf", ["new one"], seed=1)
    assert store.visible_ids() == [new]
    assert store.count() == 1, "the replaced generation must be purged from Chroma"
    assert [m.name for m in store.manuals()] == ["a.pdf"]
    assert store.remove("a.pdf") is True
    assert store.count() == 0 and store.manuals() == []
    assert store.remove("a.pdf") is False


@both_backends
def test_crash_leftovers_are_purged_by_next_writer(settings: Settings) -> None:
    store = Store(settings, "test-embedder")
    keep = _write(store, "keep.pdf", ["kept"])
    _write(store, "crash.pdf", ["partial", "records"], commit=False)  # the process "dies" here
    store.library.close()
    reopened = Store(settings, "test-embedder")
    assert reopened.visible_ids() == [keep]
    assert reopened.purge() == 1
    assert reopened.count() == 1, "only the committed manual's record may remain"


def test_collection_name_follows_vector_settings(settings: Settings) -> None:
    a = settings.collection_name("minilm-l6-v2")
    assert a == settings.collection_name("minilm-l6-v2"), "the name must be stable"
    assert a != settings.collection_name("clip-vit-b32"), "another embedder needs another collection"
    settings.ingest.chunk_words = 100
    assert a != settings.collection_name("minilm-l6-v2"), "other chunking needs another collection"
    assert 3 <= len(a) <= 63


@both_backends
def test_whole_library_search_hides_pending_records(settings: Settings) -> None:
    store = Store(settings, "test-embedder")
    committed = _write(store, "a.pdf", ["alpha pump seal"], seed=0)
    pending = store.begin("b.pdf")
    vec = _vectors(1, seed=0)  # the same vector as a.pdf's record: it would tie for first place
    store.add(pending, [Record(id="pending-0", manual="b.pdf", page=1, kind="text", text="alpha pump seal")], vec)
    visible = store.visible_ids()
    assert visible == [committed]
    dense = store.dense(vec[0], visible, 5, whole_library=True)
    assert [rid for rid, _ in dense] == [f"{committed[:8]}-0"], f"pending records must stay hidden: {dense}"
    words = store.library.keyword("pump seal", visible, 5, whole_library=True)
    assert [rid for rid, _ in words] == [f"{committed[:8]}-0"], f"pending records must stay hidden: {words}"


@pytest.mark.parametrize("backend", ["server"], indirect=True)
def test_server_collection_refuses_a_second_library(settings: Settings, tmp_path: Path) -> None:
    first = Store(settings, "test-embedder")
    _write(first, "a.pdf", ["alpha pump seal"])
    stranger = settings.model_copy(deep=True)
    stranger.store.path = tmp_path / "another-host-store"  # its own catalog, same server collection
    with pytest.raises(StoreError, match="belongs to another manualrag library"):
        Store(stranger, "test-embedder")
    assert first.count() == 1 and first.manuals()[0].name == "a.pdf", "the first library must be untouched"
    first.library.close()
    again = Store(settings, "test-embedder")  # the same library (same folder) may reopen it
    assert again.count() == 1


def test_an_unreachable_server_is_named_without_its_credentials(tmp_path: Path) -> None:
    import socket

    from rag.store import chroma_client

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, not listening: nothing answers there
        port = closed.getsockname()[1]
        settings = Settings(_env_file=None)
        settings.store.path = tmp_path / "store"
        settings.store.chroma_url = f"http://admin:chroma-pw-42@127.0.0.1:{port}?token=t-secret-9"
        with pytest.raises(StoreError) as err:
            chroma_client(settings)
    message = str(err.value)
    assert "chroma-pw-42" not in message and "t-secret-9" not in message, message
    assert f"the Chroma server at http://127.0.0.1:{port}?token=***" in message, message
