"""A long-lived process holding one Engine, as `manualrag serve` does, driven over stdin.

    python tests/appproc.py STORE

Reads one JSON command per line and answers one JSON line each:
``{"op": "search", "query": ..., "manuals": [...] | null, "k": 5}`` -> ``{"hits": [[manual, page, id], ...]}``
``{"op": "upload", "path": ..., "name": ...}`` -> ``{"status": ..., "error": ...}``
``{"op": "manuals"}`` -> ``{"manuals": [...]}``.
Errors come back as ``{"error": "Type: message"}``: the test sees exactly what a user of
the app would have hit. The web app's own process can't be driven without a browser,
and what matters here (one Store and Chroma client kept open for hours while other
processes write) is the same.

``bulk_store`` / ``write_bulk`` / ``finds`` write and probe thousands of random vectors
through the real Store, without an embedder, for the tests that need Chroma to persist
its index files.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from manualrag.engine import Engine  # noqa: E402
from manualrag.settings import Settings  # noqa: E402
from manualrag.types import ManualInfo, Record  # noqa: E402
from rag.store import Store  # noqa: E402

BULK_DIM = 16


def bulk_store(path: str | Path) -> Store:
    settings = Settings(_env_file=None)
    settings.store.path = Path(path)
    return Store(settings, f"bulk-{BULK_DIM}")


def write_bulk(store: Store, name: str, seed: int, count: int) -> None:
    """One committed manual of ``count`` records with random vectors (seeded)."""
    vectors = np.random.default_rng(seed).normal(size=(count, BULK_DIM)).astype(np.float32)
    with store.writer():
        gen = store.begin(name)
        records = [
            Record(id=f"{gen[:12]}-{i}", manual=name, page=1, kind="text", text=f"record {i}")
            for i in range(count)
        ]
        store.add(gen, records, vectors)
        store.commit(ManualInfo(name=name, sha256="0" * 64, ingest_id=gen, pdf_path="", chunks=count))


def finds(store: Store, name: str, every: int = 50) -> int:
    """How many of a manual's records (every ``every``-th) come back first for their own vector."""
    info = store.manual(name)
    assert info is not None, name
    ids = [r.id for r in store.library.records_of(info.ingest_id)][::every]
    try:
        vectors = store.vectors(ids)
    except Exception:  # noqa: BLE001 - "Error finding id": the index lost them
        return 0
    found = 0
    for rid, vector in vectors.items():
        try:
            found += store.dense(vector, [info.ingest_id], 1)[0][0] == rid
        except Exception:  # noqa: BLE001 - "Error finding id": the vector is not in the index
            pass
    return found


def main() -> None:
    settings = Settings(_env_file=None)
    settings.store.path = Path(sys.argv[1])
    settings.ingest.workers = 1
    engine = Engine(settings)
    engine.store  # noqa: B018 - open it now, as the app does on its first page
    engine.embedder  # noqa: B018
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        op = command["op"]
        try:
            if op == "search":
                result = engine.search(command["query"], command.get("manuals"), command.get("k", 5))
                reply: dict[str, object] = {"hits": [[h.manual, h.page, h.id] for h in result.hits]}
            elif op == "upload":
                report = engine.ingest_upload(Path(command["path"]).read_bytes(), command["name"])
                reply = {"status": report.status, "error": report.error}
            elif op == "manuals":
                reply = {"manuals": [m.name for m in engine.manuals()]}
            else:
                reply = {"error": f"unknown op {op}"}
        except Exception as err:  # noqa: BLE001 - report it to the test, keep serving
            reply = {"error": f"{type(err).__name__}: {err}"}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
