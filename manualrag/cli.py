"""`manualrag` command line: ingest, search, list, remove, eval, ask, serve.

This is one of the two places (with the web app) that catch errors broadly: a user
sees a one-line message and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Never reach for a model hub: every default model is on disk.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from manualrag.errors import ManualragError  # noqa: E402
from manualrag.settings import Settings  # noqa: E402


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings()
    if getattr(args, "store", None):
        settings.store.path = Path(args.store)
    if getattr(args, "ocr", None):
        settings.ingest.ocr_engine = args.ocr
    if getattr(args, "workers", None):
        settings.ingest.workers = args.workers
    if getattr(args, "embedder", None):
        settings.embed.model = args.embedder
    return settings


def _engine(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from manualrag.engine import Engine

    return Engine(_settings(args))


# -- commands ------------------------------------------------------------------------------


def cmd_ingest(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ingest.pipeline import find_pdfs

    engine = _engine(args)
    paths = [Path(p) for p in args.paths]
    missing = [p for p in paths if not p.exists()]
    for p in missing:
        print(f"✗ {p}: no such file or folder", file=sys.stderr)
    files = find_pdfs([p for p in paths if p.exists()])
    if not files:
        print("nothing to ingest: no PDF files found", file=sys.stderr)
        return 1
    bars: dict[str, tqdm] = {}

    def progress_for(path: Path):  # type: ignore[no-untyped-def]
        def update(stage: str, done: int, total: int) -> None:
            bar = bars.get(stage)
            if bar is None or bar.total != total:
                if bar is not None:
                    bar.close()
                bar = bars[stage] = tqdm(total=total, desc=f"{path.name[:30]} {stage}", unit="",
                                         leave=False, disable=args.quiet or None)
            bar.n = done
            bar.refresh()

        return update

    reports = engine.ingest(files, progress_for)
    for bar in bars.values():
        bar.close()
    if args.json:
        print(json.dumps([r.to_json() for r in reports], indent=2))
    else:
        for r in reports:
            if r.status == "failed":
                print(f"✗ {r.path}: {r.error}")
                continue
            print(
                f"✓ {r.name} [{r.status}]: {r.pages} pages, {r.chunks} text chunks, {r.figures} figures "
                f"({r.figures_with_ocr} with OCR text), {r.ocr_pages} pages OCR'd"
                + (f", {r.seconds:.1f} s" if r.status != "unchanged" else "")
            )
            shown = r.warnings[:5]
            for warning in shown:
                print(f"    ! {warning}")
            if len(r.warnings) > len(shown):
                print(f"    ! … and {len(r.warnings) - len(shown)} more warnings")
    ok = [r for r in reports if r.status != "failed"]
    return 0 if ok else 1


def _snippet(text: str, width: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def cmd_search(args: argparse.Namespace) -> int:
    engine = _engine(args)
    kinds = [args.kind] if args.kind else None
    result = engine.search(args.query, args.manual, args.k, kinds)
    if args.json:
        print(json.dumps([h.to_json() for h in result.hits], indent=2, ensure_ascii=False))
        return 0
    if not result.hits:
        print("no good matches in the library for that question")
        return 0
    for rank, hit in enumerate(result.hits, 1):
        label = f" {hit.figure}" if hit.figure else ""
        print(f"{rank:2}. [{hit.kind}{label}] {hit.manual} p.{hit.page}  score {hit.score:.4f}")
        if hit.section:
            print(f"    § {_snippet(hit.section, 100)}")
        print(f"    {_snippet(hit.text)}")
        if hit.image:
            print(f"    image: {hit.image}")
    print(f"({result.seconds * 1000:.0f} ms)")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    engine = _engine(args)
    manuals = engine.manuals()
    if args.json:
        from dataclasses import asdict

        print(json.dumps([asdict(m) for m in manuals], indent=2))
        return 0
    store = engine.store
    print(f"store {store.root}  collection {store.collection_name}  embedder {store.embedder_id}")
    if not manuals:
        print("no manuals yet: add some with `manualrag ingest PATH...`")
        return 0
    for m in manuals:
        print(
            f"{m.name}: {m.pages} pages, {m.chunks} chunks, {m.figures} figures "
            f"({m.figures_with_ocr} with OCR), {m.ocr_pages} pages OCR'd, ingested {m.ingested_at}"
            + (f", {len(m.warnings)} warnings" if m.warnings else "")
        )
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    engine = _engine(args)
    status = 0
    for name in args.manuals:
        if engine.remove(name):
            print(f"removed {Path(name).name}")
        else:
            print(f"✗ no manual named {Path(name).name!r} in the library (see `manualrag list`)")
            status = 1
    return status


def cmd_eval(args: argparse.Namespace) -> int:
    from rag.evaluate import format_report, run_eval

    engine = _engine(args)
    report = run_eval(engine, Path(args.questions), scope=args.scope, k=args.k,
                      baselines=not args.no_baselines, manuals_dir=args.manuals_dir)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


# -- parser ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="manualrag", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--store", help="store folder (default: MANUALRAG_STORE__PATH or data/store)")
        p.add_argument("--embedder", help="embedder spec (default: minilm)")

    p = sub.add_parser("ingest", help="add PDF manuals (files or folders) to the library")
    p.add_argument("paths", nargs="+")
    p.add_argument("--ocr", choices=["rapidocr", "easyocr"], help="OCR engine")
    p.add_argument("--workers", type=int, help="processes for page work (default 2)")
    p.add_argument("--json", action="store_true", help="print the reports as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    common(p)
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("search", help="show the best passages and figures for a question")
    p.add_argument("query")
    p.add_argument("--manual", action="append", help="only this manual (repeatable)")
    p.add_argument("-k", type=int, default=None, help="number of results")
    p.add_argument("--kind", choices=["text", "table", "figure"], help="only this kind")
    p.add_argument("--json", action="store_true")
    common(p)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("list", help="list manuals in the library")
    p.add_argument("--json", action="store_true")
    common(p)
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("remove", help="remove manuals from the library")
    p.add_argument("manuals", nargs="+")
    common(p)
    p.set_defaults(func=cmd_remove)

    p = sub.add_parser("eval", help="measure retrieval on a gold question file")
    p.add_argument("questions")
    p.add_argument("--scope", choices=["manual", "all"], default="manual")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--json", action="store_true")
    p.add_argument("--no-baselines", action="store_true", help="skip the two baseline pipelines")
    p.add_argument("--manuals-dir", help="folder of the gold PDFs, for the baselines (default: stored copies)")
    common(p)
    p.set_defaults(func=cmd_eval)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except ManualragError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
