"""`manualrag eval`: retrieval quality on a gold question file, beside two plain baselines.

A hit at k means a gold page of the gold manual is among the pages of the top k
results. Questions with no gold pages (not answerable from the manual) are left out
of hit@k and MRR. The baselines are what a tutorial pipeline would do with the same
PDF: BM25 over whole pages, and MiniLM over 180-word chunks of the raw text layer.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from manualrag.errors import ManualragError
from rag.grounding import keyword_query
from rag.page_refs import NUMBER_WORDS

CUTOFFS = (1, 5, 10)
BASELINE_WORDS = 180


@dataclass(frozen=True)
class GoldQuestion:
    id: str
    doc: str
    question: str
    pages: tuple[int, ...]
    kind: str
    figure: str | None = None
    answer: str = ""
    must_contain: tuple[str, ...] = ()


def load_gold(path: Path) -> list[GoldQuestion]:
    try:
        items = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ManualragError(f"cannot read gold questions from {path}: {err}") from err
    questions = []
    for item in items:
        questions.append(
            GoldQuestion(
                id=str(item["id"]),
                doc=Path(item["doc"]).name,
                question=item["question"],
                pages=tuple(int(p) for p in item.get("pages") or ()),
                kind=item.get("kind") or "unknown",
                figure=item.get("figure"),
                answer=item.get("answer", ""),
                must_contain=tuple(item.get("must_contain") or ()),
            )
        )
    return questions


Ranked = list[tuple[str, int]]  # (manual, page), best first


def score(questions: Sequence[GoldQuestion], ranked: dict[str, Ranked], k: int) -> dict[str, object]:
    """hit@1/5/10 and MRR@k, overall and by question kind."""

    def metrics(subset: Sequence[GoldQuestion]) -> dict[str, float | int]:
        out: dict[str, float | int] = {"n": len(subset)}
        if not subset:
            return out
        for cut in CUTOFFS:
            hits = sum(1 for q in subset if _first_hit(q, ranked[q.id], cut) is not None)
            out[f"hit@{cut}"] = round(hits / len(subset), 3)
        rr = [1 / (r + 1) if (r := _first_hit(q, ranked[q.id], k)) is not None else 0.0 for q in subset]
        out["mrr"] = round(sum(rr) / len(subset), 3)
        return out

    answerable = [q for q in questions if q.pages]
    kinds = sorted({q.kind for q in answerable})
    return {**metrics(answerable), "by_kind": {kind: metrics([q for q in answerable if q.kind == kind]) for kind in kinds}}


def _first_hit(q: GoldQuestion, ranked: Ranked, cut: int) -> int | None:
    for rank, (manual, page) in enumerate(ranked[:cut]):
        if manual == q.doc and page in q.pages:
            return rank
    return None


def _percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


# -- baselines --------------------------------------------------------------------------


def _page_texts(pdf: Path) -> list[str]:
    import pymupdf

    with pymupdf.open(pdf) as doc:
        return [page.get_text() for page in doc]


class Bm25Pages:
    """BM25 (SQLite FTS5, Porter stemming) over the raw text layer of whole pages."""

    def __init__(self, pdfs: dict[str, Path]) -> None:
        self.db = sqlite3.connect(":memory:")
        self.db.execute("CREATE VIRTUAL TABLE pages USING fts5(manual UNINDEXED, page UNINDEXED, text, tokenize='porter unicode61')")
        for name, pdf in pdfs.items():
            for number, text in enumerate(_page_texts(pdf), 1):
                self.db.execute("INSERT INTO pages VALUES (?, ?, ?)", (name, number, text))

    def search(self, query: str, manuals: Sequence[str] | None, k: int) -> Ranked:
        match = keyword_query(query)
        if not match:
            return []
        sql = "SELECT manual, page FROM pages WHERE pages MATCH ?"
        args: list[object] = [match]
        if manuals:
            sql += f" AND manual IN ({','.join('?' * len(manuals))})"
            args.extend(manuals)
        rows = self.db.execute(sql + " ORDER BY bm25(pages) LIMIT ?", [*args, k]).fetchall()
        return [(str(m), int(p)) for m, p in rows]


class DenseChunks:
    """The tutorial pipeline: raw page text cut into 180-word chunks, embedded, cosine top-k."""

    def __init__(self, pdfs: dict[str, Path], embed: Callable[[list[str]], np.ndarray], cache_dir: Path | None) -> None:
        self.embed = embed
        self.meta: list[tuple[str, int]] = []
        texts: list[str] = []
        for name, pdf in pdfs.items():
            for number, text in enumerate(_page_texts(pdf), 1):
                words = text.split()
                for start in range(0, len(words), BASELINE_WORDS):
                    texts.append(" ".join(words[start : start + BASELINE_WORDS]))
                    self.meta.append((name, number))
        cache = None
        if cache_dir is not None:
            import hashlib

            key = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:16]
            cache = cache_dir / f"dense-chunks-{key}.npy"
        if cache is not None and cache.exists():
            self.vectors = np.load(cache)
        else:
            self.vectors = embed(texts) if texts else np.zeros((0, 1), dtype=np.float32)
            if cache is not None:
                cache.parent.mkdir(parents=True, exist_ok=True)
                np.save(cache, self.vectors)

    def search(self, query: str, manuals: Sequence[str] | None, k: int) -> Ranked:
        if not len(self.meta):
            return []
        sims = self.vectors @ self.embed([query])[0]
        order = np.argsort(-sims)
        out: Ranked = []
        for i in order:
            if manuals and self.meta[i][0] not in manuals:
                continue
            out.append(self.meta[i])
            if len(out) >= k:
                break
        return out


# -- the command ------------------------------------------------------------------------


def run_eval(
    engine,  # type: ignore[no-untyped-def]
    questions_path: Path,
    scope: str = "manual",
    k: int = 10,
    baselines: bool = True,
    manuals_dir: str | None = None,
    budgets: Sequence[int] = (),
) -> dict[str, object]:
    """Retrieval at k for every gold question, and for each prompt budget in `budgets` (default:
    the configured one) how many answerable questions' prompts show every must_contain string."""
    questions = load_gold(questions_path)
    library = {m.name: m for m in engine.manuals()}
    missing = sorted({q.doc for q in questions} - set(library))
    if missing:
        raise ManualragError(
            f"the gold file names manuals that are not in the library: {', '.join(missing)}; "
            "ingest them first (manualrag ingest PATH)"
        )
    k = max(k, max(CUTOFFS))
    engine.search("warm up", k=1)  # load the model outside the timings

    budgets = sorted(set(budgets or [engine.settings.llm.budget]))
    per_question = []
    ranked: dict[str, Ranked] = {}
    shown: dict[int, list[dict[str, object]]] = {b: [] for b in budgets}
    latencies: list[float] = []
    abstained = 0
    for q in questions:
        manuals = [q.doc] if scope == "manual" else None
        started = time.perf_counter()
        result = engine.search(q.question, manuals, k)
        latencies.append((time.perf_counter() - started) * 1000)
        ranked[q.id] = [(h.manual, h.page) for h in result.hits]
        if not q.pages and not result.hits:
            abstained += 1
        per_question.append(
            {
                "id": q.id,
                "kind": q.kind,
                "gold_pages": list(q.pages),
                "ranked": [
                    {"manual": h.manual, "page": h.page, "kind": h.kind, "figure": h.figure, "score": round(h.score, 6)}
                    for h in result.hits
                ],
            }
        )
        if q.pages and q.must_contain:
            context = engine.context(q.question, result, manuals)  # once: each budget reuses its embeddings
            for budget in budgets:
                shown[budget].append(_evidence_row(engine, q, context, budget))
            per_question[-1]["evidence_shown"] = {str(b): shown[b][-1]["shown"] for b in budgets}

    summary: dict[str, object] = {
        "questions": len(questions),
        "scope": scope,
        "k": k,
        **score(questions, ranked, k),
        "latency_ms": {"p50": round(_percentile(latencies, 50), 1), "p95": round(_percentile(latencies, 95), 1)},
        "unanswerable_with_no_results": f"{abstained}/{sum(1 for q in questions if not q.pages)}",
    }
    summary["evidence"] = {str(b): _evidence_summary(rows) for b, rows in shown.items()}
    if baselines:
        summary["baselines"] = _run_baselines(engine, questions, scope, k, library, manuals_dir)
    return {"summary": summary, "questions": per_question}


def _evidence_row(engine, q: GoldQuestion, context, budget: int) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """Whether the prompt built at `budget` prompt tokens from `context` (``Engine.context``)
    shows every must_contain string: what the model can answer from at best, measured
    without running it."""
    from rag.prompts import build_prompt

    s = engine.settings.llm
    hits, pages, _, meaning = context
    if not hits:
        return {"kind": q.kind, "shown": False, "tokens": 0}
    prompt = build_prompt(q.question, hits, context_tokens=s.context_tokens, max_tokens=s.max_tokens,
                          prompt_tokens=budget, max_sources=s.max_sources, pages=pages, meaning=meaning)
    text = "\n".join(prompt.evidence)
    return {"kind": q.kind, "shown": all(contains(text, m) for m in q.must_contain),
            "tokens": prompt.tokens}


def _evidence_summary(rows: Sequence[dict[str, object]]) -> dict[str, object]:
    kinds = sorted({str(r["kind"]) for r in rows})
    return {
        "n": len(rows),
        "contains_all": round(sum(bool(r["shown"]) for r in rows) / max(len(rows), 1), 3),
        "by_kind": {k: f"{sum(bool(r['shown']) for r in rows if r['kind'] == k)}/{sum(1 for r in rows if r['kind'] == k)}"
                    for k in kinds},
        "prompt_tokens_p50": _percentile([float(r["tokens"]) for r in rows], 50),  # type: ignore[arg-type]
    }


def _run_baselines(engine, questions, scope, k, library, manuals_dir):  # type: ignore[no-untyped-def]
    docs = sorted({q.doc for q in questions})
    pdfs = {}
    for doc in docs:
        if manuals_dir and (Path(manuals_dir) / doc).exists():
            pdfs[doc] = Path(manuals_dir) / doc
        else:
            pdfs[doc] = engine.store.abs_path(library[doc].pdf_path)
    embedder = engine.embedder
    systems = {
        "bm25_pages": Bm25Pages(pdfs),
        "dense_chunks_180w": DenseChunks(pdfs, embedder.embed_texts, engine.store.root / "baselines"),
    }
    out = {}
    for name, system in systems.items():
        ranked = {q.id: system.search(q.question, [q.doc] if scope == "manual" else None, k) for q in questions}
        out[name] = score(questions, ranked, k)
    return out


# A source's key in an answer ("[2]").
_KEY = re.compile(r"\[\d+\]")
# A whole number an answer may write in words ("3": "three").
_SPELLED = {str(n): word for word, n in NUMBER_WORDS.items()}


def contains(text: str, expected: str) -> bool:
    """`expected` in `text`, case and spacing aside, as whole words: "4" is not in "14". A
    whole number up to twenty is there in words too: "three aids" gives the count "3"; a
    word is there in its plural too ("weak symbols" for "weak symbol"), a number with its
    unit glued on ("5V" for "5"). A citation key is no word of the answer: "[1]" does not
    give "1"."""
    text = _KEY.sub(" ", text)
    words = r"\s+".join(re.escape(w) for w in expected.lower().split())
    if expected.strip() in _SPELLED:
        words = f"(?:{words}|{_SPELLED[expected.strip()]})"
    elif expected.strip()[-1:].isalpha():
        words += "(?:e?s)?"
    # A number may have its unit glued on ("5" in "0 to 5V"), not more digits ("14", "1.5").
    after = r"(?![0-9]|[.,][0-9])" if expected.strip()[-1:].isdigit() else r"(?![a-z0-9])"
    return re.search(rf"(?<![a-z0-9]){words}{after}", text.lower()) is not None


def run_answer_eval(engine, questions_path: Path, scope: str = "manual") -> dict[str, object]:  # type: ignore[no-untyped-def]
    """Answer every gold question end to end and score the answers.

    correct: an answerable question whose answer contains every `must_contain` string
    (case-insensitive, as whole words: ``contains``); abstained: an unanswerable one answered with the shared phrase;
    citation precision: cited pages that are gold pages, over answerable questions.
    """
    from rag.answer import follow

    questions = load_gold(questions_path)
    engine.answerer.prepare()  # load the model outside the timings
    rows = []
    for q in questions:
        followed = follow(engine.ask(q.question, [q.doc] if scope == "manual" else None), question=q.question)
        answer, evidence_s = followed.answer, followed.evidence_s
        text = answer.text.lower()
        cited_pages = [c.page for c in answer.citations if c.manual == q.doc]
        rows.append(
            {
                "id": q.id,
                "kind": q.kind,
                "answerable": bool(q.pages),
                "correct": bool(q.pages) and all(contains(text, m) for m in q.must_contain),
                "abstained": not answer.answerable,
                "outcome": answer.outcome,
                "evidence_s": None if evidence_s is None else round(evidence_s, 3),
                "cited_pages": cited_pages,
                "cited_gold": sum(1 for p in cited_pages if p in q.pages),
                "first_token_s": answer.first_token_s,
                "total_s": round(answer.total_s + answer.retrieval_s, 2),
                "error": answer.error,
                "answer": answer.text,
                "draft": answer.raw_text if answer.outcome == "withheld" else None,
                "unsupported": answer.unsupported,
                "not_covered": answer.not_covered,
                "withheld_drafts": answer.withheld_drafts,
            }
        )
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    cited = sum(len(r["cited_pages"]) for r in answerable)
    stated = [r for r in rows if r["outcome"] == "answered"]
    firsts = [r["first_token_s"] for r in rows if r["first_token_s"] is not None]
    totals = [r["total_s"] for r in rows]
    evidence = [r["evidence_s"] for r in rows if r["evidence_s"] is not None]
    kinds = sorted({str(r["kind"]) for r in answerable})
    summary = {
        "questions": len(rows),
        "model": engine.answerer.chat.model,
        "answer_contains_all": round(sum(r["correct"] for r in answerable) / max(len(answerable), 1), 3),
        "by_kind": {
            kind: f"{sum(r['correct'] for r in answerable if r['kind'] == kind)}/"
            f"{sum(1 for r in answerable if r['kind'] == kind)}"
            for kind in kinds
        },
        "outcomes": {o: sum(1 for r in rows if r["outcome"] == o)
                     for o in ("answered", "not_in_manuals", "withheld", "llm_error")},
        "retried": sum(1 for r in rows if r["withheld_drafts"]),
        "evidence_s": {"p50": round(_percentile(evidence, 50), 2), "p95": round(_percentile(evidence, 95), 2)},
        "unanswerable_abstained": round(sum(r["abstained"] for r in unanswerable) / max(len(unanswerable), 1), 3),
        "citation_page_precision": round(sum(r["cited_gold"] for r in answerable) / max(cited, 1), 3),
        # Of the answers stated (not "not in the manuals"), the share that is right: what a
        # technician can trust. Withholding a wrong value raises it; withholding a right one
        # lowers answer_contains_all instead.
        "stated_right": f"{sum(r['correct'] for r in stated)}/{len(stated)}",
        "errors": sum(1 for r in rows if r["error"]),
        "first_token_s": {"p50": round(_percentile(firsts, 50), 2), "p95": round(_percentile(firsts, 95), 2)},
        "total_s": {"p50": round(_percentile(totals, 50), 2), "p95": round(_percentile(totals, 95), 2)},
    }
    return {"summary": summary, "questions": rows}


def format_answer_report(report: dict[str, object]) -> str:
    s: dict = report["summary"]  # type: ignore[assignment]
    lines = [
        f"{s['questions']} questions answered by {s['model']}",
        f"answers containing every must_contain string: {s['answer_contains_all']:.3f}",
        f"unanswerable questions answered with the shared phrase: {s['unanswerable_abstained']:.3f}",
        f"citations on a gold page: {s['citation_page_precision']:.3f}",
        f"answers stated that are right: {s['stated_right']}",
        "correct by kind: " + ", ".join(f"{k} {v}" for k, v in s["by_kind"].items()),
        "outcomes: " + ", ".join(f"{k} {v}" for k, v in s["outcomes"].items())
        + f"; {s['retried']} withheld drafts retried from more evidence",
        f"evidence shown p50 {s['evidence_s']['p50']} s, p95 {s['evidence_s']['p95']} s",
        f"first token p50 {s['first_token_s']['p50']} s, p95 {s['first_token_s']['p95']} s; "
        f"total p50 {s['total_s']['p50']} s, p95 {s['total_s']['p95']} s; errors {s['errors']}",
    ]
    for row in report["questions"]:  # type: ignore[attr-defined]
        mark = "✓" if row["correct"] or (not row["answerable"] and row["abstained"]) else "✗"
        lines.append(f"  {mark} {row['id']} [{row['kind']}] ({row['outcome']}) {' '.join(row['answer'].split())[:110]}")
    return "\n".join(lines)


def format_report(report: dict[str, object]) -> str:
    summary: dict = report["summary"]  # type: ignore[assignment]
    rows = [("manualrag", summary)]
    rows += list((summary.get("baselines") or {}).items())
    lines = [f"{summary['questions']} questions, scope {summary['scope']}, answerable {summary.get('n', 0)}"]
    header = f"{'system':22} {'hit@1':>6} {'hit@5':>6} {'hit@10':>6} {'MRR':>6}"
    lines.append(header)
    for name, m in rows:
        lines.append(f"{name:22} {m.get('hit@1', 0):6.3f} {m.get('hit@5', 0):6.3f} {m.get('hit@10', 0):6.3f} {m.get('mrr', 0):6.3f}")
    lines.append("hit@5 by kind:")
    kinds = sorted(summary.get("by_kind", {}))
    lines.append(f"{'system':22} " + " ".join(f"{kind:>10}" for kind in kinds))
    for name, m in rows:
        by_kind = m.get("by_kind", {})
        lines.append(f"{name:22} " + " ".join(f"{by_kind.get(kind, {}).get('hit@5', 0):10.3f}" for kind in kinds))
    for budget, ev in summary.get("evidence", {}).items():
        lines.append(
            f"prompt at {budget} tokens shows every must_contain string: {ev['contains_all']:.3f} of {ev['n']} "
            f"(" + ", ".join(f"{k} {v}" for k, v in ev["by_kind"].items()) + f"; prompt p50 {ev['prompt_tokens_p50']:.0f} tokens)"
        )
    lat = summary["latency_ms"]
    lines.append(f"search latency p50 {lat['p50']} ms, p95 {lat['p95']} ms")
    lines.append(f"unanswerable questions with no results: {summary['unanswerable_with_no_results']}")
    return "\n".join(lines)

