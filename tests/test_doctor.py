"""`manualrag doctor` against real setups: a good store, a dead LLM endpoint, a missing model,
a damaged or inconsistent store, a dead Chroma server."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from chroma_server import both_backends
from pydantic import SecretStr

from manualrag import doctor
from manualrag.cli import main
from manualrag.engine import Engine
from manualrag.settings import Settings

sys.path.insert(0, str(Path(__file__).parent / "rag"))
from llm_helpers import FakeLlm, smollm_path  # noqa: E402


@pytest.fixture
def fake_llm() -> Iterator[FakeLlm]:
    server = FakeLlm()
    yield server
    server.close()


@pytest.fixture
def refused_url() -> Iterator[str]:
    """A port that is bound (nobody else takes it) but not listening: connections are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{s.getsockname()[1]}"


def _by_name(results: list[doctor.Check]) -> dict[str, doctor.Check]:
    return {c.name: c for c in results}


@both_backends
def test_good_setup_passes_every_check(ingested_engine: Engine, fake_llm: FakeLlm, backend: str) -> None:
    settings = ingested_engine.settings
    settings.llm.base_url = fake_llm.url
    settings.llm.model = "test-model"
    checks = _by_name(doctor.run_checks(settings))
    assert {c.status for c in checks.values()} == {"ok"}, doctor.format_checks(list(checks.values()))
    records = ingested_engine.store.count()
    assert f"1 manuals, {records} records, {records} vectors" in checks["store"].detail
    assert ("chroma server" in checks) == (backend == "server")
    assert "minilm" in checks["embedder"].detail and "384 dims" in checks["embedder"].detail
    assert fake_llm.requests[-1].path == "/v1/models", "the endpoint check is a GET of the model list"


def test_dead_llm_endpoint_fails_with_exit_status(
    sample_store: Path,
    refused_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MANUALRAG_LLM__BASE_URL", f"{refused_url}/v1")
    monkeypatch.setenv("MANUALRAG_LLM__API_KEY", "sk-doctor-secret-123")
    assert main(["doctor", "--store", str(sample_store)]) == 1, (
        "a failed check makes the exit status non-zero"
    )
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.split()[1:2] == ["llm"])
    assert line.startswith("fail") and "cannot connect" in line and refused_url in line
    assert "fix: start that server, or correct MANUALRAG_LLM__BASE_URL" in out
    assert "sk-doctor-secret-123" not in out
    assert out.strip().splitlines()[-1].startswith("1 failed"), "only the LLM is broken here"


def test_llm_endpoint_problems(fake_llm: FakeLlm, settings: Settings) -> None:
    settings.llm.base_url = fake_llm.url
    settings.llm.model = "gpt-none"
    check = doctor.check_llm(settings)
    assert (
        check.status == "warn"
        and "does not list model 'gpt-none'" in check.detail
        and "test-model" in check.detail
    )
    settings.llm.model = ""
    settings.llm.api_key = SecretStr("sk-abc-123456")
    assert doctor.check_llm(settings).status == "ok"
    assert fake_llm.requests[-1].headers["authorization"] == "Bearer sk-abc-123456"


def test_embedded_model_file_checks(settings: Settings, tmp_path: Path) -> None:
    settings.llm.model_path = tmp_path / "missing.gguf"
    check = doctor.check_llm(settings)
    assert check.status == "fail" and f"no model file at {tmp_path / 'missing.gguf'}" in check.detail
    assert "MANUALRAG_LLM__MODEL_PATH" in check.fix
    not_gguf = tmp_path / "model.gguf"
    not_gguf.write_bytes(b"<html>404</html>")
    settings.llm.model_path = not_gguf
    assert "is not a GGUF model file" in doctor.check_llm(settings).detail
    settings.llm.model_path = smollm_path()
    check = doctor.check_llm(settings)
    assert check.status == "ok" and "SmolLM2" in check.detail


def test_damaged_and_inconsistent_stores(ingested_engine: Engine, tmp_path: Path) -> None:
    settings = ingested_engine.settings
    store = ingested_engine.store
    (info,) = store.manuals()
    some = [r.id for r in store.library.records_of(info.ingest_id)][:3]
    store.collection.delete(ids=some)  # vectors lost behind the catalog's back
    check = doctor.check_store(settings)
    assert check.status == "warn" and "disagree" in check.detail and "restore" in check.fix
    store.library.close()
    db = settings.store.path / "library.db"
    for extra in ("-wal", "-shm"):
        Path(f"{db}{extra}").unlink(missing_ok=True)
    db.write_bytes(b"SQLite format 3\x00" + b"\x13" * 4096)
    check = doctor.check_store(settings)
    assert check.status == "fail" and "library.db" in check.detail and "manualrag restore" in check.fix
    empty = settings.model_copy(deep=True)
    empty.store.path = tmp_path / "new-store"
    assert doctor.check_store(empty).status == "warn", "a store not created yet is a warning, not a failure"


def test_dead_chroma_server_and_low_disk(
    settings: Settings, refused_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.store.chroma_url = refused_url
    checks = _by_name(
        [fn(settings) for _, fn in doctor.checks_for(settings) if _ in ("chroma server", "store", "disk")]
    )
    assert checks["chroma server"].status == "fail" and refused_url in checks["chroma server"].detail
    assert "MANUALRAG_STORE__CHROMA_URL" in checks["chroma server"].fix
    assert checks["disk"].status == "ok" and "GiB free" in checks["disk"].detail
    monkeypatch.setattr(doctor, "DISK_FAIL_BYTES", 1 << 60)  # more than any disk has free
    assert doctor.check_disk(settings).status == "fail"
