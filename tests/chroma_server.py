"""A real Chroma server (`chroma run`) on 127.0.0.1 for the server-backend tests.

Started once per test session on a free port with its data in a temp folder, and
killed (its whole process group) when the session ends. Tests share it, so each
one starts by dropping the collections an earlier test left (``reset``).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

START_TIMEOUT_S = 60.0  # measured ~3 s on 2 idle cores; a busy CI box is slower
_ATTEMPTS = 3  # another process may take the free port before chroma binds it


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def chroma_cli() -> str:
    """The `chroma` script of this venv (it comes with chromadb), else one on PATH."""
    beside = Path(sys.executable).with_name("chroma")
    found = str(beside) if beside.is_file() else shutil.which("chroma")
    if not found:
        raise RuntimeError("the `chroma` command is missing: reinstall chromadb in the venv")
    return found


class ChromaServer:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.log_path = data_dir.parent / "chroma-server.log"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.start_s = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ChromaServer:
        for _ in range(_ATTEMPTS):
            self.port = _free_port()
            began = time.monotonic()
            env = {**os.environ, "ANONYMIZED_TELEMETRY": "False", "NO_COLOR": "1"}
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(
                    [chroma_cli(), "run", "--path", str(self.data_dir), "--host", "127.0.0.1",
                     "--port", str(self.port)],
                    stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                )  # fmt: skip
            if self._wait_ready(began):
                self.start_s = time.monotonic() - began
                return self
            self.stop()
        raise RuntimeError(f"chroma run did not start; its log ends: {self.log_tail()}")

    def _wait_ready(self, began: float) -> bool:
        while time.monotonic() - began < START_TIMEOUT_S:
            if self.proc is None or self.proc.poll() is not None:
                return False  # exited: the port was taken, or chroma failed
            try:
                with urllib.request.urlopen(f"{self.url}/api/v2/heartbeat", timeout=1) as response:
                    if response.status == 200:
                        return True
            except OSError:
                pass
            time.sleep(0.1)
        return False

    def log_tail(self, chars: int = 800) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def reset(self) -> None:
        """Drop every collection: the next test starts from an empty server."""
        import chromadb
        from chromadb.config import Settings

        client = chromadb.HttpClient(
            host="127.0.0.1", port=self.port, settings=Settings(anonymized_telemetry=False)
        )
        for collection in client.list_collections():
            client.delete_collection(collection.name)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None


# Runs a test once on the embedded store and once on the shared server (fixture `backend`).
both_backends = pytest.mark.parametrize("backend", ["embedded", "server"], indirect=True)
