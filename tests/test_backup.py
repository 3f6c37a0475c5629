"""Backup and restore on real stores: same counts and same search results after a round trip,
on the embedded store and on a `chroma run` server, and clear errors for damaged archives."""

from __future__ import annotations

import gzip
import io
import tarfile
import threading
import time
from pathlib import Path

import pytest
from chroma_server import both_backends

from manualrag.backup import BackupError, backup, restore
from manualrag.cli import main
from manualrag.conversations import Conversations
from manualrag.engine import Engine
from manualrag.settings import Settings
from manualrag.types import Answer

QUERIES = [
    "what does fault code F07452 mean",
    "fuse rating of the motor contactor coil",
    "controller wiring diagram",
    "how often should the motor bearings be greased",
]


def _results(engine: Engine) -> list[list[tuple[str, int, str, str, str, float]]]:
    return [
        [(h.manual, h.page, h.kind, h.figure, h.text, round(h.score, 6)) for h in engine.search(q, k=6).hits]
        for q in QUERIES
    ]


def _talk(store: Path) -> None:
    """A conversation with an answer and a rating, as the app leaves them in app.db."""
    conversations = Conversations(store / "app.db")
    cid = conversations.create("fuses")
    turn = conversations.add_turn(cid, Answer(question="which fuse?", text="F2 [1]"), asked_at=time.time())
    conversations.add_feedback(turn, -1, "wrong page", "staff")
    conversations.close()


def _engine(settings: Settings, embedder) -> Engine:  # type: ignore[no-untyped-def]
    engine = Engine(settings)
    engine.__dict__["embedder"] = embedder
    return engine


def _elsewhere(settings: Settings, folder: Path) -> Settings:
    other = settings.model_copy(deep=True)
    other.store.path = folder
    return other


@both_backends
def test_round_trip_keeps_counts_and_search_results(
    ingested_engine: Engine, embedder, tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:  # type: ignore[no-untyped-def]
    source = ingested_engine
    _talk(source.settings.store.path)
    before = _results(source)
    assert all(before), "every query must find something before the backup"
    archive = tmp_path / "library.tar.gz"
    made = backup(source.settings, source.store.embedder_id, archive)
    counts = made.manifest["counts"]
    assert counts["manuals"] == 1 and counts["records"] == source.store.count() > 0
    assert counts["figures"] >= 2 and counts["pdfs"] == 1
    assert (counts["conversations"], counts["turns"], counts["feedback"]) == (1, 1, 1)
    source.store.library.close()
    if backend == "server":
        request.getfixturevalue("chroma_server").reset()  # the server lost its data

    target = _elsewhere(source.settings, tmp_path / "restored")
    restored = restore(target, archive)
    assert restored.manifest["counts"] == counts
    engine = _engine(target, embedder)
    assert engine.store.count() == counts["records"], "every vector must come back"
    assert [m.name for m in engine.manuals()] == ["p200-controller.pdf"]
    assert _results(engine) == before, "search must return the same hits, in order, with the same scores"
    hit = next(h for h in engine.search("controller wiring diagram", k=6).hits if h.kind == "figure")
    assert Path(hit.image).is_file() and str(target.store.path) in hit.image, (
        "figures restored with the library"
    )
    talk = Conversations(target.store.path / "app.db")
    (turn,) = talk.answers()
    assert turn.question == "which fuse?" and [f.comment for f in talk.feedback(turn.id)] == ["wrong page"]
    talk.close()
    engine.store.library.close()


def test_embedded_backup_restores_into_a_server(
    ingested_engine: Engine, embedder, tmp_path: Path, chroma_server
) -> None:  # type: ignore[no-untyped-def]
    """The move a team makes when one machine is outgrown: embedded library -> Chroma server."""
    before = _results(ingested_engine)
    archive = tmp_path / "library.tar"
    backup(ingested_engine.settings, ingested_engine.store.embedder_id, archive)
    chroma_server.reset()
    target = _elsewhere(ingested_engine.settings, tmp_path / "server-store")
    target.store.chroma_url = chroma_server.url
    restore(target, archive)
    engine = _engine(target, embedder)
    assert not (target.store.path / "chroma").exists(), "vectors must go to the server, not a local folder"
    assert _results(engine) == before
    assert engine.remove("p200-controller.pdf") and engine.store.count() == 0, (
        "the restored library owns the collection"
    )


def test_restore_refuses_a_non_empty_store_unless_forced(
    ingested_engine: Engine, embedder, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    settings = ingested_engine.settings
    archive = tmp_path / "library.tar.gz"
    backup(settings, ingested_engine.store.embedder_id, archive)
    records = ingested_engine.store.count()
    ingested_engine.store.library.close()
    target = _elsewhere(settings, tmp_path / "busy")
    target.store.path.mkdir()
    (target.store.path / "notes.txt").write_text("someone's file")
    with pytest.raises(BackupError, match="not empty.*--force"):
        restore(target, archive)
    restore(target, archive, force=True)
    assert (target.store.path / "notes.txt").read_text() == "someone's file", "files not ours are left alone"
    assert _engine(target, embedder).store.count() == records


def test_backup_waits_for_a_running_writer(ingested_engine: Engine, tmp_path: Path) -> None:
    store = ingested_engine.store
    archive = tmp_path / "library.tar"
    done = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            backup(ingested_engine.settings, store.embedder_id, archive)
        except BaseException as err:  # noqa: BLE001 - reported by the assertion below
            errors.append(err)
        done.set()

    with store.write_lock():  # an ingest holds the store
        worker = threading.Thread(target=run)
        worker.start()
        assert not done.wait(1.5), "backup must not copy the store while a writer holds it"
        assert not archive.exists()
    assert done.wait(60) and not errors, errors
    assert archive.is_file()


# -- damaged archives -----------------------------------------------------------------------------


@pytest.fixture
def archive(ingested_engine: Engine, tmp_path: Path) -> Path:
    path = tmp_path / "good.tar"
    backup(ingested_engine.settings, ingested_engine.store.embedder_id, path)
    return path


def _rewrite(src: Path, dest: Path, change) -> Path:  # type: ignore[no-untyped-def]
    """Copy a tar archive member by member, letting ``change(name, data)`` alter or drop members."""
    with tarfile.open(src) as old, tarfile.open(dest, "w") as new:
        for member in old.getmembers():
            data = old.extractfile(member).read()  # type: ignore[union-attr]
            data = change(member.name, data)
            if data is None:
                continue
            member.size = len(data)
            new.addfile(member, io.BytesIO(data))
    return dest


def test_damaged_archives_give_one_clear_line(
    archive: Path, tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(gzip.compress(archive.read_bytes())[:5000])
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"this is not an archive at all" * 100)
    zipped = tmp_path / "library.zip"
    zipped.write_bytes(b"PK\x03\x04")

    def flip(name: str, data: bytes) -> bytes:
        return data[:-1] + bytes([data[-1] ^ 0xFF]) if name == "library.db" else data

    flipped = _rewrite(archive, tmp_path / "flipped.tar", flip)
    no_manifest = _rewrite(archive, tmp_path / "other.tar", lambda n, d: None if n == "manifest.json" else d)
    extra = _rewrite(archive, tmp_path / "extra.tar", lambda n, d: d)
    with tarfile.open(extra, "a") as tar:
        info = tarfile.TarInfo("figures/smuggled.png")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    cases = {
        truncated: "not a readable backup archive",
        junk: "not a readable backup archive",
        flipped: "library.db does not match its checksum",
        no_manifest: "not a manualrag backup",
        extra: "do not match the manifest",
        tmp_path / "missing.tar": "no such backup file",
        zipped: "a backup is a .tar or .tar.gz file",
    }
    for n, (path, expected) in enumerate(cases.items()):
        store = tmp_path / f"target-{n}"
        code = main(["restore", str(path), "--store", str(store)])
        err = capsys.readouterr().err.strip()
        assert code == 2, f"{path.name}: exit status {code}"
        assert err.startswith("error:") and expected in err and "\n" not in err, f"{path.name}: {err!r}"
        assert not store.exists() or not any(store.iterdir()), f"{path.name}: nothing may be restored"


def test_cli_backup_then_restore(archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "cli-restored"
    assert main(["restore", str(archive), "--store", str(target)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("restored 1 manuals,") and str(target) in out
    again = tmp_path / "again.tar.gz"
    assert main(["backup", str(again), "--store", str(target)]) == 0
    assert "backed up 1 manuals" in capsys.readouterr().out and again.is_file()
    assert main(["backup", str(again), "--store", str(target)]) == 2, (
        "an existing archive is never overwritten"
    )
    assert "exists already" in capsys.readouterr().err


def test_forced_restore_refuses_a_store_in_use(ingested_engine: Engine, tmp_path: Path) -> None:
    settings = ingested_engine.settings
    store = ingested_engine.store
    archive = tmp_path / "library.tar.gz"
    backup(settings, store.embedder_id, archive)
    records = store.count()
    with store.write_lock():  # an ingest (or an upload in the app) is writing to this store
        began = time.monotonic()
        with pytest.raises(BackupError, match=r"is in use: .*Stop `manualrag ingest`.*then restore again"):
            restore(settings, archive, force=True)
        assert time.monotonic() - began < 5, "refused at once, not after waiting for the writer"
    assert (settings.store.path / "write.lock").exists(), "the lock file the writer holds is never deleted"
    assert (settings.store.path / "library.db").exists() and store.count() == records, "nothing was cleared"
