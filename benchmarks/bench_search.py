"""Search latency as the library grows: 1x (one manual) up to 100k records.

    .venv/bin/python benchmarks/bench_search.py --store STORE_WITH_NEETS [--sizes 10000,30000,100000]

Synthetic manuals are made from the real records of the store: each copy keeps a
real record's text with its numbers, codes and labels changed, and a vector equal
to the real vector plus noise (re-normalised), so both the keyword index and the
HNSW graph see realistic distributions without hours of embedding. The copy of the
store is made in a temp folder; the original is not touched.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from manualrag.engine import Engine  # noqa: E402
from manualrag.settings import Settings  # noqa: E402
from manualrag.types import ManualInfo, Record  # noqa: E402

# Search latency only: topics of a wiring handbook, none of them a gold question.
QUESTIONS = [
    "Which crimping tool fits an insulated terminal lug?",
    "circular mil area of a round conductor",
    "how long to heat shrinkable tubing",
    "What voltage rating does the insulation tester use?",
    "spot tie knot spacing",
    "wire marking code W12C circuit function",
    "Keep hands clear of the soldering iron tip",
    "coaxial connector assembly",
]


def _mutate(text: str, rng: random.Random) -> str:
    def number(m: re.Match[str]) -> str:
        return str(rng.randint(1, 999))

    return re.sub(r"\d+", number, text)


def grow(engine: Engine, target: int, rng: random.Random) -> int:
    store = engine.store
    base = store.manuals()[0]
    records = store.library.records_of(base.ingest_id)
    got = store.collection.get(ids=[r.id for r in records], include=["embeddings"])
    vectors = dict(zip(got["ids"], np.asarray(got["embeddings"]), strict=True))
    copies = 0
    total = store.count()
    while total < target:
        copies += 1
        name = f"synthetic-{copies:04d}.pdf"
        gen = store.begin(name)
        new_records, new_vectors = [], []
        for i, rec in enumerate(records):
            vec = vectors[rec.id] + np.random.default_rng(rng.randint(0, 2**31)).normal(0, 0.04, len(vectors[rec.id]))
            new_vectors.append(vec / np.linalg.norm(vec))
            new_records.append(
                Record(id=f"{gen[:12]}-s{i:05d}", manual=name, page=rec.page, kind=rec.kind,
                       text=_mutate(rec.text, rng), embed_text=_mutate(rec.embed_text, rng), section=rec.section,
                       figure=rec.figure, figure_refs=rec.figure_refs, caption=rec.caption)
            )
        store.add(gen, new_records, np.asarray(new_vectors, dtype=np.float32))
        store.commit(ManualInfo(name=name, sha256=gen, ingest_id=gen, pdf_path=base.pdf_path, chunks=len(records)))
        total += len(records)
    return total


def measure(engine: Engine, manual: str | None, repeats: int) -> dict[str, float]:
    times = []
    for _ in range(repeats):
        for q in QUESTIONS:
            started = time.perf_counter()
            engine.search(q, [manual] if manual else None, 10)
            times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {"p50_ms": round(statistics.median(times), 1), "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", required=True, help="a store holding one real ingested manual")
    parser.add_argument("--sizes", default="10000,30000,100000")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "store"
        shutil.copytree(args.store, copy)
        settings = Settings(_env_file=None)
        settings.store.path = copy
        engine = Engine(settings)
        manual = engine.manuals()[0].name
        engine.search("warm up", k=1)
        rng = random.Random(7)
        rows = []
        sizes = [engine.store.count()] + [int(s) for s in args.sizes.split(",") if s]
        for size in sizes:
            started = time.perf_counter()
            total = grow(engine, size, rng)
            grow_s = time.perf_counter() - started
            rows.append({"records": total, "manuals": len(engine.manuals()), "grow_s": round(grow_s, 1),
                         "one_manual": measure(engine, manual, args.repeats),
                         "whole_library": measure(engine, None, args.repeats)})
            print(json.dumps(rows[-1]), flush=True)
    print(json.dumps({"cpu_count": os.cpu_count(), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
