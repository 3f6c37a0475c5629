"""`manualrag` command line: ingest, search, list, remove, eval, ask, serve, doctor, backup, restore.

This is one of the two places (with the web app) that catch errors broadly: a user
sees a one-line message and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

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
    from rag.embedders import hub_id

    if hub_id(settings.embed.model) is None:
        # Never reach for a model hub unless the embedder names a hub model: every default is on disk.
        # (Set before transformers is imported: huggingface_hub reads it once.)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
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
    if bool(args.query) == bool(args.image):
        print("error: give a question or --image PHOTO (one of them)", file=sys.stderr)
        return 2
    engine = _engine(args)
    if args.image:
        result = engine.search_image(Path(args.image), args.manual, args.k)
    else:
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
    for m in manuals:
        print(
            f"{m.name}: {m.pages} pages, {m.chunks} chunks, {m.figures} figures "
            f"({m.figures_with_ocr} with OCR), {m.ocr_pages} pages OCR'd, ingested {m.ingested_at}"
            + (f", {len(m.warnings)} warnings" if m.warnings else "")
        )
    # Each embedder has its own collection: say what else this store holds, and how to reach it.
    for name in sorted(set(store.library.collections()) - {store.collection_name}):
        held = store.library.manuals(name)
        embedders = ", ".join(sorted({m.embedder for m in held if m.embedder})) or "unknown"
        print(f"also here: collection {name}  embedder {embedders}: {len(held)} manuals "
              "(searched when MANUALRAG_EMBED__MODEL or --embedder picks that embedder)")
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


def cmd_ask(args: argparse.Namespace) -> int:
    from rag.answer import AnswerEvent, Evidence, Status, Token, follow

    engine = _engine(args)
    streamed = False

    def show(event: AnswerEvent) -> None:
        nonlocal streamed
        if args.json:
            return
        if isinstance(event, Evidence) and event.best is not None:
            # The best evidence first: a technician can read it while the model thinks.
            best = event.best
            figure = f", {best.figure}" if best.figure else ""
            print(f"Best evidence: {best.manual} p.{best.page}{figure}", flush=True)
            print(textwrap.indent(textwrap.fill(event.quote(), 100), "  > "), flush=True)
            print(flush=True)
        elif isinstance(event, Status):
            if event.restart and streamed:
                print("\n", flush=True)  # the withheld draft stays above; the next one follows
            print(f"… {event.text}", file=sys.stderr, flush=True)
        elif isinstance(event, Token):
            print(event.text, end="", flush=True)
            streamed = True

    try:
        followed = follow(engine.ask(args.question, args.manual), show, args.question)
    finally:
        engine.close()
    final, evidence_s = followed.answer, followed.evidence_s
    if args.json:
        payload = final.to_json()
        timings = dict(payload["timings"]) | {"evidence_s": None if evidence_s is None else round(evidence_s, 3)}
        print(json.dumps({"answer": final.text, "outcome": final.outcome, "citations": payload["citations"],
                          "hits": payload["hits"], "model": final.model, "timings": timings,
                          "error": final.error, "answerable": final.answerable, "unsupported": final.unsupported,
                          "not_covered": final.not_covered,
                          "withheld_drafts": final.withheld_drafts, "query": final.query}, indent=2, ensure_ascii=False))
        return 0 if not final.error else 3
    if streamed:
        print("\n")  # the streamed text had unchecked citations: the checked answer follows
    if final.error:
        print(f"error: {final.error}", file=sys.stderr)
    print(final.text)
    if final.outcome == "withheld":
        if final.unsupported:
            what = ", ".join(final.unsupported)
            print(f"(a draft answer was withheld: it stated what no source says: {what})")
        else:
            print("(a draft answer was withheld: it did not answer the question)")
    elif final.not_covered:
        print(f"(not in the manuals searched: {', '.join(final.not_covered)})")
    if final.citations:
        print("\nSources:")
        for c in final.citations:
            figure = f", {c.figure}" if c.figure else ""
            image = f"  ({c.image})" if c.image else ""
            print(f"  [{c.key}] {c.manual} p.{c.page}{figure}{image}")
    elif final.hits and final.error:
        print("\nRetrieved passages (the model could not be asked):")
        for n, hit in enumerate(final.hits[:5], 1):
            print(f"  [{n}] {hit.manual} p.{hit.page} {hit.figure}  {_snippet(hit.text, 100)}")
    return 0 if not final.error else 3


def _budgets(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"budgets are whole numbers of tokens, comma-separated: {text!r}") from None
    if not values or any(not 50 <= v <= 32000 for v in values):
        raise argparse.ArgumentTypeError(f"each budget must be 50..32000 tokens: {text!r}")
    return values


def cmd_eval(args: argparse.Namespace) -> int:
    from rag.evaluate import format_answer_report, format_report, run_answer_eval, run_eval

    engine = _engine(args)
    if args.answers:
        try:
            report = run_answer_eval(engine, Path(args.questions), scope=args.scope)
        finally:
            engine.close()
        print(json.dumps(report, indent=2) if args.json else format_answer_report(report))
        return 0
    report = run_eval(engine, Path(args.questions), scope=args.scope, k=args.k,
                      baselines=not args.no_baselines, manuals_dir=args.manuals_dir, budgets=args.budgets)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


def _streamlit_secrets(settings: Settings) -> Path | None:
    """Write Streamlit's [auth] section from the OIDC settings, readable by this user only.

    st.login reads its provider from secrets.toml; generating it keeps MANUALRAG_UI__*
    the one place to configure, and the file lives in the store's runtime folder.
    """
    ui = settings.ui
    if not ui.oidc_enabled:
        return None
    import secrets

    redirect = ui.oidc_redirect_uri or f"http://{ui.host}:{ui.port}/oauth2callback"
    values = {
        "redirect_uri": redirect,
        "cookie_secret": ui.oidc_cookie_secret.get_secret_value() or secrets.token_urlsafe(32),
        "client_id": ui.oidc_client_id,
        "client_secret": ui.oidc_client_secret.get_secret_value(),
        "server_metadata_url": ui.oidc_server_metadata_url,
    }
    lines = ["[auth]"] + [f"{key} = {json.dumps(value)}" for key, value in values.items()]
    runtime = settings.store.path.absolute() / "runtime"
    runtime.mkdir(parents=True, exist_ok=True)
    path = runtime / "streamlit-secrets.toml"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    os.chmod(path, 0o600)  # an older file may have been created with wider rights
    return path


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the browser app: `streamlit run ui/app.py`, configured from the settings and flags."""
    import ui

    settings = _settings(args)
    if args.host:
        settings.ui.host = args.host
    if args.port:
        settings.ui.port = args.port
    app = Path(ui.__file__).resolve().parent / "app.py"
    store = settings.store.path.absolute()
    store.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["MANUALRAG_STORE__PATH"] = str(store)  # the app builds its own Settings from the environment
    if getattr(args, "embedder", None):
        env["MANUALRAG_EMBED__MODEL"] = args.embedder
    env.setdefault("HF_HUB_OFFLINE", "0")  # _settings set "1" unless the embedder is a hub model
    # Let `python -m streamlit` in the child import this project even when it is not installed.
    root = str(Path(ui.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    argv = [
        sys.executable, "-m", "streamlit", "run", str(app),
        "--server.headless=true",
        "--browser.gatherUsageStats=false",
        f"--server.address={settings.ui.host}",
        f"--server.port={settings.ui.port}",
        f"--server.maxUploadSize={settings.ui.max_upload_mb}",
        "--server.fileWatcherType=none",  # a served app does not reload on edits
        "--server.runOnSave=false",
        "--client.showErrorDetails=none",  # the app shows one line; tracebacks go to the log
        "--client.toolbarMode=minimal",
    ]  # fmt: skip
    secrets_file = _streamlit_secrets(settings)
    if secrets_file is not None:
        argv.append(f"--secrets.files={secrets_file}")
    url = f"http://{settings.ui.host}:{settings.ui.port}"
    print(f"manualrag: serving {store} on {url}", file=sys.stderr, flush=True)
    # exec: Ctrl-C and the service manager's signals reach Streamlit directly.
    os.execve(sys.executable, argv, env)
    return 0  # not reached


def cmd_doctor(args: argparse.Namespace) -> int:
    from manualrag.doctor import format_checks, run_checks, to_json

    results = run_checks(_settings(args))
    print(to_json(results) if args.json else format_checks(results))
    return 1 if any(c.status == "fail" for c in results) else 0


def cmd_backup(args: argparse.Namespace) -> int:
    from manualrag.backup import backup
    from rag.embedders import settings_embedder_id

    settings = _settings(args)
    summary = backup(settings, settings_embedder_id(settings.embed), Path(args.dest))
    size = summary.path.stat().st_size / 2**20
    print(f"{summary.line('backed up')} to {summary.path} ({size:.1f} MiB, {summary.seconds:.1f} s)")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from manualrag.backup import restore
    from manualrag.logs import safe_url

    settings = _settings(args)
    summary = restore(settings, Path(args.src), force=args.force)
    where = safe_url(settings.store.chroma_url) if settings.store.chroma_url else "embedded Chroma"
    print(f"{summary.line('restored')} into {summary.path} (vectors: {where}, {summary.seconds:.1f} s)")
    for note in summary.notes:
        print(f"note: {note}")
    return 0


# -- parser ---------------------------------------------------------------------------------


MAX_RESULTS = 200  # more would only slow search down: nobody reads past a few dozen hits


def _result_count(text: str) -> int:
    """``-k``: a whole number of results in 1..MAX_RESULTS (argparse prints the message and exits 2)."""
    try:
        k = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= k <= MAX_RESULTS:
        raise argparse.ArgumentTypeError(f"{k} is out of range: use 1 to {MAX_RESULTS}")
    return k


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
    p.add_argument("query", nargs="?")
    p.add_argument("--image", metavar="PHOTO",
                   help="find figures that look like this photo (needs a clip:, siglip: or voyage: embedder)")
    p.add_argument("--manual", action="append", help="only this manual (repeatable)")
    p.add_argument("-k", type=_result_count, default=None, help=f"number of results (1..{MAX_RESULTS})")
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

    p = sub.add_parser("ask", help="answer a question from the manuals, with cited pages and figures")
    p.add_argument("question")
    p.add_argument("--manual", action="append", help="only this manual (repeatable)")
    p.add_argument("--json", action="store_true")
    common(p)
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("eval", help="measure retrieval on a gold question file")
    p.add_argument("questions")
    p.add_argument("--scope", choices=["manual", "all"], default="manual")
    p.add_argument("-k", type=_result_count, default=10, help=f"results per question (1..{MAX_RESULTS})")
    p.add_argument("--json", action="store_true")
    p.add_argument("--no-baselines", action="store_true", help="skip the two baseline pipelines")
    p.add_argument("--answers", action="store_true",
                   help="answer every question with the LLM and score answers, abstentions and citations")
    p.add_argument("--manuals-dir", help="folder of the gold PDFs, for the baselines (default: stored copies)")
    p.add_argument("--budgets", type=_budgets, default=(),
                   help="prompt budgets in tokens, comma-separated (e.g. 260,500,1000): for each, how many prompts "
                   "show every must_contain string (default: the configured budget)")
    common(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("serve", help="open the browser app (Streamlit) on 127.0.0.1")
    p.add_argument("--host", help="address to listen on (default: MANUALRAG_UI__HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default: MANUALRAG_UI__PORT or 8501)")
    common(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("doctor", help="check the setup (models, store, LLM, disk) and say what to fix")
    p.add_argument("--json", action="store_true")
    common(p)
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("backup", help="write the library (catalog, vectors, figures, PDFs, conversations) to one archive")
    p.add_argument("dest", help="archive to create: NAME.tar.gz or NAME.tar")
    common(p)
    p.set_defaults(func=cmd_backup)

    p = sub.add_parser("restore", help="restore a backup archive into an empty store folder")
    p.add_argument("src", help="archive written by `manualrag backup`")
    p.add_argument("--force", action="store_true", help="replace the library in a non-empty store folder")
    common(p)
    p.set_defaults(func=cmd_restore)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from pydantic import ValidationError

    from manualrag import logs

    args = build_parser().parse_args(argv)
    try:
        settings = _settings(args)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        print(f"error: configuration: {where}: {first.get('msg', 'invalid value')}", file=sys.stderr)
        return 2
    if args.verbose and settings.log.level != "DEBUG":
        settings.log.level = "INFO"
    logs.configure(settings, default_level="WARNING")
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
