"""Several processes, one library: `manualrag ingest` beside a running app, two ingests at once.

Embedded Chroma keeps each collection's vector index in the memory of the process that
opened it. These tests use real processes on one store folder: the app's (a long-lived
Engine, tests/appproc.py), the CLI's, and bare Store writers, then check from a fresh
process that every record's vector is still there and found.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from badpdfs import tiny_manual
from pdfgen import ManualBuilder

from manualrag.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
ENV = {**{k: v for k, v in os.environ.items() if not k.startswith("MANUALRAG_")}, "PYTHONPATH": str(ROOT)}


def _cli(*args: str, store: Path, env: dict[str, str] | None = None, **popen: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "manualrag.cli", *args, "--store", str(store)],
        env=env or ENV, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen,
    )  # fmt: skip


class AppProcess:
    """tests/appproc.py: one Engine kept open, like the web app's."""

    def __init__(self, store: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "appproc.py"), str(store)],
            env=ENV, text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        assert json.loads(self._line()) == {"ready": True}

    def _line(self) -> str:
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        assert line, f"the app process died (exit {self.proc.poll()})"
        return line

    def call(self, **command: object) -> dict[str, Any]:
        self.proc.stdin.write(json.dumps(command) + "\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        return json.loads(self._line())  # type: ignore[no-any-return]

    def close(self) -> None:
        self.proc.stdin.close()  # type: ignore[union-attr]
        self.proc.wait(30)


@pytest.fixture
def app(settings: Settings) -> Iterator[AppProcess]:
    proc = AppProcess(settings.store.path)
    yield proc
    proc.close()


def _fresh_check(store: Path) -> dict[str, Any]:
    """From a new process: every visible record's own vector finds it, and nothing else is stored."""
    script = """
import json, sys
import numpy as np
from manualrag.settings import Settings
from rag.store import Store
s = Settings(_env_file=None); s.store.path = __import__("pathlib").Path(sys.argv[1])
store = Store(s, sys.argv[2])
out = {"manuals": {}, "count": store.count(), "lost": [], "errors": []}
for info in store.manuals():
    ids = [r.id for r in store.library.records_of(info.ingest_id)]
    out["manuals"][info.name] = len(ids)
    vectors = store.vectors(ids)
    for rid in ids:
        if rid not in vectors:
            out["lost"].append(rid); continue
        try:
            top = store.dense(vectors[rid], [info.ingest_id], 3)
        except Exception as err:
            out["errors"].append(f"{rid}: {type(err).__name__}: {err}"); continue
        # A page of one passage has that passage's vector, so the index may answer with the
        # twin: the record is there (store.vectors found it) and its vector is served.
        if not top or (rid not in [t[0] for t in top] and top[0][1] < 0.9999):
            out["lost"].append(rid)
print(json.dumps(out))
"""
    from rag.embedders import embedder_id

    run = subprocess.run([sys.executable, "-c", script, str(store), embedder_id("minilm")], env=ENV,
                         capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_cli_ingest_while_the_app_is_up(settings: Settings, app: AppProcess, tmp_path: Path) -> None:
    store = settings.store.path
    first = app.call(op="upload", path=str(tiny_manual(tmp_path / "winch.pdf", "winch W4")), name="winch.pdf")
    assert first == {"status": "ingested", "error": ""}, first
    hits = app.call(op="search", query="winch brake band", manuals=None)
    assert hits.get("hits") and hits["hits"][0][0] == "winch.pdf", hits

    # Another process adds a manual while the app holds its store open.
    cli = _cli("ingest", "-q", str(tiny_manual(tmp_path / "hoist.pdf", "hoist H2", pages=3)), store=store)
    out, err = cli.communicate(timeout=300)
    assert cli.returncode == 0 and "✓ hoist.pdf [ingested]" in out, out + err

    # The app finds it at once, in one manual and across the library, without an error.
    scoped = app.call(op="search", query="hoist brake band", manuals=["hoist.pdf"])
    assert "error" not in scoped, f"searching the new manual failed in the app: {scoped['error']}"
    assert {h[0] for h in scoped["hits"]} == {"hoist.pdf"} and len(scoped["hits"]) == 3, scoped
    everywhere = app.call(op="search", query="hoist H2 brake", manuals=None)
    assert everywhere.get("hits") and everywhere["hits"][0][0] == "hoist.pdf", everywhere

    # The app writes next (an upload): what the CLI wrote must survive it.
    third = app.call(op="upload", path=str(tiny_manual(tmp_path / "crane.pdf", "crane C9")), name="crane.pdf")
    assert third == {"status": "ingested", "error": ""}, third
    app.close()
    check = _fresh_check(store)
    assert check["errors"] == [] and check["lost"] == [], check
    # A record per page's passage and one per whole page.
    assert check["manuals"] == {"crane.pdf": 2, "hoist.pdf": 6, "winch.pdf": 2}, check
    assert check["count"] == 10, f"no stray vectors: {check}"


# Above Chroma's in-memory batch, so the index is persisted to its files (measured: with
# 50 records per write the loss below does not show; with 1,500 it does).
BULK = 1500


def _python(code: str, timeout: float = 300) -> str:
    run = subprocess.run([sys.executable, "-c", code], env={**ENV, "PYTHONPATH": f"{ROOT}:{ROOT / 'tests'}"},
                         capture_output=True, text=True, timeout=timeout, check=False)  # fmt: skip
    assert run.returncode == 0, f"the process failed: {run.stderr[-3000:]}"
    return run.stdout


def test_writes_from_two_processes_keep_every_vector(settings: Settings) -> None:
    """A process keeps its store open across another process's write, then writes itself.

    Without reloading, the first process saved its stale index over the second's, and
    the second's vectors were gone for good while Chroma's count still included them."""
    store = settings.store.path
    second = f"from appproc import *; write_bulk(bulk_store({str(store)!r}), 'second', 2, {BULK})"
    _python(f"""
import subprocess, sys
from appproc import *
store = bulk_store({str(store)!r})
write_bulk(store, "first", 1, {BULK})
subprocess.run([sys.executable, "-c", {second!r}], check=True)
assert finds(store, "second") == {BULK // 50}, "the long-lived process must find what the other wrote"
write_bulk(store, "third", 3, {BULK})
""")
    found = _python(f"import json; from appproc import *; s = bulk_store({str(store)!r}); "
                    "print(json.dumps([finds(s, n) for n in ('first', 'second', 'third')]))")  # fmt: skip
    assert json.loads(found.splitlines()[-1]) == [BULK // 50] * 3, (
        f"found per manual (first, second, third): {found}"
    )


@pytest.mark.slow  # two CLI processes, each loading the embedder
def test_two_ingests_at_once_take_turns(settings: Settings, tmp_path: Path) -> None:
    """The second `manualrag ingest` waits for the first, says so, and both manuals go in whole."""
    store = settings.store.path
    pump = tiny_manual(tmp_path / "pump.pdf", "pump P7", pages=2)
    winch = tiny_manual(tmp_path / "winch.pdf", "winch W4")
    first = _cli("ingest", "-q", "--workers", "1", str(pump), store=store, start_new_session=True)
    deadline = time.monotonic() + 180
    while not _pending(store):  # registered under the write lock: it holds the lock now
        assert first.poll() is None, f"the first ingest ended too soon: {first.communicate()}"
        assert time.monotonic() < deadline, "the first ingest never started"
        time.sleep(0.05)
    # Frozen while it holds the lock, however slow this machine is, so the second must wait.
    os.killpg(first.pid, signal.SIGSTOP)
    try:
        second = _cli("ingest", "-q", "--workers", "1", str(winch), store=store)
        said = _wait_for_line(second, "another manualrag process is writing", timeout=180)
    finally:
        os.killpg(first.pid, signal.SIGCONT)
    assert said, "the second ingest must say why it waits"
    out2, err2 = second.communicate(timeout=300)
    out1, err1 = first.communicate(timeout=300)
    assert first.returncode == 0 and "✓ pump.pdf [ingested]" in out1, out1 + err1
    assert second.returncode == 0 and "✓ winch.pdf [ingested]" in out2, out2 + err2
    check = _fresh_check(store)
    assert check["errors"] == [] and check["lost"] == [], check
    assert check["manuals"] == {"pump.pdf": 4, "winch.pdf": 2} and check["count"] == 6, check  # passages and pages


def _wait_for_line(proc: subprocess.Popen[str], text: str, timeout: float) -> bool:
    """Read ``proc``'s stderr until a line contains ``text`` (True) or it ends or time runs out."""
    found = threading.Event()

    def read() -> None:
        for line in proc.stderr:  # type: ignore[union-attr]
            if text in line:
                found.set()
                return

    threading.Thread(target=read, daemon=True).start()
    return found.wait(timeout)


def _pending(store: Path) -> int:
    import sqlite3

    try:
        with sqlite3.connect(store / "library.db", timeout=1) as conn:
            return int(conn.execute("SELECT count(*) FROM pending").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


# -- the web app, killed and restarted --------------------------------------------------------------


def _serve(store: Path, port: int, llm_url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**ENV, "MANUALRAG_LLM__BASE_URL": llm_url, "MANUALRAG_LLM__MAX_RETRIES": "0",
           "MANUALRAG_INGEST__WORKERS": "1"}  # fmt: skip
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "manualrag.cli", "serve", "--store", str(store), "--port", str(port)],
            cwd=store.parent, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def _wait_healthy(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    import urllib.request

    deadline = time.monotonic() + 180
    while True:
        try:
            with urllib.request.urlopen(url + "_stcore/health", timeout=2) as resp:
                if resp.read().strip() == b"ok":
                    return
        except OSError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, (
            f"serve did not start:\n{log.read_text()[-3000:]}"
        )
        time.sleep(0.3)


def _rate(page: Any, act: Callable[[], object]) -> None:
    """Do ``act`` inside the last answer's "Rate this answer" expander. The page reruns after an
    answer and after a rating is picked, and a rerun can redraw the expander closed: open it
    again and retry."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    down = page.get_by_role("radio", name="Thumbs down").last
    for _ in range(10):
        deadline = time.monotonic() + 20
        while not down.is_visible() and time.monotonic() < deadline:
            opened = page.evaluate("""() => Array.from(document.querySelectorAll('details'))
                .some(d => d.open && d.innerText.includes('Rate this answer'))""")
            if not opened:
                page.locator("summary").filter(has_text="Rate this answer").last.click()
            time.sleep(1)
        try:
            act()
            return
        except PlaywrightTimeout:
            continue
    raise AssertionError("could not use the rating form")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="needs Debian's chromium")
def test_app_killed_and_restarted_keeps_everything(settings: Settings, embedder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`manualrag serve` in a real browser: a CLI ingest while it runs is searchable at once; a
    SIGKILL while it streams an answer and ingests an upload loses nothing that was finished."""
    sys.path.insert(0, str(ROOT / "tests" / "ui"))
    from browserhelpers import ASK, chromium, free_port, guard, open_app, wait_answer
    from uihelpers import FakeLlm, Reply

    from manualrag.conversations import Conversations
    from manualrag.engine import Engine

    store = settings.store.path
    engine = Engine(settings)
    engine.__dict__["embedder"] = embedder
    assert (
        engine.ingest_upload(tiny_manual(tmp_path / "winch.pdf", "winch W4").read_bytes(), "winch.pdf").status
        == "ingested"
    )
    engine.store.library.close()
    llm = FakeLlm()
    log = tmp_path / "serve.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    server = _serve(store, port, llm.url, log)
    try:
        _wait_healthy(server, url, log)
        with chromium() as browser:
            context = browser.new_context(viewport={"width": 1400, "height": 950})
            outside = guard(context)
            page = open_app(context, url)

            llm.script = [Reply("Winchspanner: a 13 mm spanner adjusts the brake [1].")]
            page.get_by_placeholder(ASK).fill("How is the winch brake adjusted?")
            page.get_by_placeholder(ASK).press("Enter")
            wait_answer(page, "Winchspanner")
            _rate(page, lambda: page.get_by_role("radio", name="Thumbs down").last.click(timeout=5000))
            # A text area's value reaches the app when it loses focus, and the page may still be
            # rerunning for the rating just picked (on a loaded machine, after the comment was
            # typed, redrawing the box empty): type it until it stays, then press Save.
            comment = page.get_by_placeholder("What was wrong or missing?").last
            for _ in range(5):
                _rate(page, lambda: comment.fill("brake torque missing", timeout=5000))
                comment.press("Tab")
                time.sleep(1.5)
                if comment.input_value() == "brake torque missing":
                    break
            _rate(page, lambda: page.get_by_role("button", name="Save feedback").last.click(timeout=5000))
            page.get_by_text("the answer is in the review queue").first.wait_for(timeout=30_000)

            # The CLI writes to the store the app holds open: the app must find it at once.
            cli = _cli("ingest", "-q", str(tiny_manual(tmp_path / "hoist.pdf", "hoist H2")), store=store)
            out, err = cli.communicate(timeout=300)
            assert cli.returncode == 0, out + err
            llm.script = [Reply("hoist H2 brake"), Reply("Hoistspanner: see the hoist manual [1].")]
            page.get_by_placeholder(ASK).fill("And the hoist H2 brake?")
            page.get_by_placeholder(ASK).press("Enter")
            wait_answer(page, "Hoistspanner")
            page.get_by_role("button", name="hoist.pdf p.1").first.wait_for(timeout=30_000)

            # Crash the app mid-upload and mid-answer (scanned pages: the upload's OCR takes a
            # while; 10 pages were read before the kill on an idle machine).
            slow = tmp_path / "compressor.pdf"
            m = ManualBuilder()
            m.text_page("Compressor K3", ["The compressor K3 oil is changed every 400 hours."])
            for n in range(40):
                m.scanned_page([f"Compressor K3 sheet {n + 1}", "Check the belt tension monthly."])
            m.save(slow)
            page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files([str(slow)])
            page.get_by_text("compressor.pdf: reading pages").wait_for(timeout=120_000)
            llm.script = [Reply("winch brake band"), Reply("Unfinished " * 200, piece_delay=0.5)]
            page.get_by_placeholder(ASK).fill("What about the winch brake band?")
            page.get_by_placeholder(ASK).press("Enter")
            page.get_by_text("Unfinished").first.wait_for(timeout=120_000)
            assert page.get_by_text("compressor.pdf: reading pages").count(), "the upload is still running"
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(30)
            assert outside == [], f"the page fetched from outside the app: {outside}"
            owner = context.cookies()  # the browser's owner token: its conversations are its own
            context.close()

        # Restarted on the same store: conversations, feedback and the library are all there.
        server = _serve(store, port, llm.url, log)
        _wait_healthy(server, url, log)
        with chromium() as browser:
            context = browser.new_context(viewport={"width": 1400, "height": 950})
            context.add_cookies(owner)  # the same browser, reopened
            page = open_app(context, url)
            page.get_by_text("Recent conversations").click()
            page.get_by_role("button", name="How is the winch brake adjusted?").wait_for(timeout=30_000)
            llm.script = [Reply("Hoistagain: the hoist brake [1].")]
            page.get_by_placeholder(ASK).fill("Hoist H2 brake band wear?")
            page.get_by_placeholder(ASK).press("Enter")
            wait_answer(page, "Hoistagain")
            page.get_by_role("button", name="hoist.pdf p.1").first.wait_for(timeout=30_000)
            context.close()
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)
        llm.close()

    turns = Conversations(store / "app.db").answers()
    questions = sorted(t.question for t in turns)
    assert "How is the winch brake adjusted?" in questions and "And the hoist H2 brake?" in questions, (
        questions
    )
    winch = next(t for t in turns if t.question == "How is the winch brake adjusted?")
    assert [(f.rating, f.comment) for f in winch.feedback] == [(-1, "brake torque missing")]
    assert Conversations(store / "app.db").flagged_count() == 1
    check = _fresh_check(store)
    assert check["errors"] == [] and check["lost"] == [], check
    assert set(check["manuals"]) == {"winch.pdf", "hoist.pdf"}, "the killed upload is not in the library"
    # The next run cleans up after the killed one and ingests the manual whole.
    cli = _cli("ingest", "-q", str(tmp_path / "compressor.pdf"), store=store)
    out, err = cli.communicate(timeout=600)
    assert cli.returncode == 0 and "✓ compressor.pdf [ingested]" in out, out + err
    check = _fresh_check(store)
    assert check["errors"] == [] and check["lost"] == [], check
    assert set(check["manuals"]) == {"winch.pdf", "hoist.pdf", "compressor.pdf"}
    assert check["count"] == sum(check["manuals"].values()), f"no orphan vectors: {check}"
