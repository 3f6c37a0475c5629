"""No orphans, no endless ingest: page workers that stall, in real processes.

``stall/sitecustomize.py`` makes every pool worker hang on its first page. A SIGKILL of
`manualrag ingest` (the parent only, as an OOM killer or `kill -9 PID` would do it) must
not leave the workers running, and a manual whose pages hang must fail with one line
after ``parse_timeout_s``, stop its workers and release the write lock.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from pdfgen import ManualBuilder

from ingest.pipeline import POOL_MIN_PAGES
from manualrag.engine import Engine
from manualrag.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
STALL = Path(__file__).resolve().parent / "stall"


def _manual(path: Path) -> Path:
    m = ManualBuilder()
    for n in range(POOL_MIN_PAGES + 2):  # enough pages for the process pool
        m.text_page(f"Chapter {n + 1} Winch", [f"The winch W{n} brake is set to {20 + n} N.m."])
    return m.save(path)


def _workers(parent: psutil.Process) -> list[psutil.Process]:
    """The pool's page workers among ``parent``'s children (not the resource tracker)."""
    found = []
    for child in parent.children(recursive=True):
        try:
            cmdline = " ".join(child.cmdline())
        except psutil.Error:
            continue
        if "spawn_main" in cmdline:
            found.append(child)
    return found


def _stall_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MANUALRAG_")}
    env.update(PYTHONPATH=f"{STALL}{os.pathsep}{ROOT}", MANUALRAG_TEST_STALL="1", **extra)
    return env


def test_workers_exit_when_ingest_is_killed(tmp_path: Path) -> None:
    pdf = _manual(tmp_path / "winch.pdf")
    proc = subprocess.Popen(
        [sys.executable, "-m", "manualrag.cli", "ingest", "--store", str(tmp_path / "store"),
         "--workers", "2", "-q", str(pdf)],
        env=_stall_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        parent = psutil.Process(proc.pid)
        deadline = time.monotonic() + 180
        while len(workers := _workers(parent)) < 2:
            assert proc.poll() is None and time.monotonic() < deadline, "the ingest should start 2 workers"
            time.sleep(0.5)
        time.sleep(2)  # the workers are set up and stuck on their pages
        os.kill(proc.pid, signal.SIGKILL)  # the parent only: its pool cannot clean up
        proc.wait(10)
        gone, alive = psutil.wait_procs(workers, timeout=15)
        assert not alive, f"workers still running 15 s after their parent died: {[p.pid for p in alive]}"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_a_stalled_manual_fails_with_one_line_and_releases_the_lock(
    tmp_path: Path, embedder: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in _stall_env().items():
        if key in ("PYTHONPATH", "MANUALRAG_TEST_STALL"):
            monkeypatch.setenv(key, value)  # the pool's spawned workers inherit it; this process is untouched
    settings = Settings(_env_file=None)
    settings.store.path = tmp_path / "store"
    settings.ingest.workers = 2
    settings.ingest.parse_timeout_s = 20
    engine = Engine(settings)
    engine.__dict__["embedder"] = embedder
    began = time.monotonic()
    (report,) = engine.ingest([_manual(tmp_path / "winch.pdf")])
    took = time.monotonic() - began
    assert report.status == "failed", report
    expected = "reading its pages took longer than 20 s (MANUALRAG_INGEST__PARSE_TIMEOUT_S)"
    assert report.error.startswith(expected), report.error
    assert "\n" not in report.error
    assert 20 <= took < 60, f"it should give up at the limit, took {took:.1f} s"
    assert _workers(psutil.Process()) == [], "the stalled workers are stopped"
    with engine.store.write_lock(wait=False):  # raises StoreBusy if the lock were still held
        pass
    assert engine.manuals() == [], "nothing of the manual is visible"
