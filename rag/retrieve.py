"""Hybrid retrieval: dense (shared-space embedder) + keyword (BM25), fused, figure-linked, diverse.

Dense search finds paraphrases ("antifreeze" for "coolant"); BM25 finds
exact codes and values ("F07452", "20 AMP", "W12C") that embeddings blur. Reciprocal
rank fusion combines the two ranked lists without calibrating their scores.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest.labels import find_refs
from manualrag.errors import EmbedderUnavailable
from manualrag.settings import RetrievalSettings
from manualrag.types import Hit, Record
from rag.catalog import catalog_fact, wants_count
from rag.embedders import IMAGE_SEARCH_HINT, Embedder
from rag.grounding import code_parts, question_codes, question_names, spells_code
from rag.page_refs import PageRef, find_page_refs, resolve
from rag.store import Store

# A figure named by a retrieved passage joins the results just below that passage.
LINKED_FIGURE_FACTOR = 0.9
# Weight of each retriever in the fusion. Keyword matches of codes and numbers are
# precise, the dense side carries paraphrase: tuned on the dev set (benchmarks/).
DENSE_WEIGHT = 1.0
KEYWORD_WEIGHT = 1.0
# Below this cosine similarity of the best dense hit, with no keyword match either,
# the question is off-topic for the library: return nothing rather than noise.
MIN_DENSE_SIMILARITY = 0.18
PART_KINDS = ("text", "table", "figure")
# With the whole library searched, a page reference is resolved in this many manuals: those
# of the best results.
REFERENCE_MANUALS = 2


# Records holding a code's longest part that are read for the code spelled out in parts.
_SPACED_CODE_CANDIDATES = 200


@dataclass
class SearchResult:
    query: str
    hits: list[Hit]
    best_similarity: float = 0.0  # cosine of the best dense candidate
    keyword_matches: int = 0
    seconds: float = 0.0
    trace: dict[str, object] = field(default_factory=dict)
    pages_named: list[tuple[str, int]] = field(default_factory=list)  # (manual, page) the query names
    vector: Any = None  # the query's embedding, for the answer stage to reuse

    @property
    def confident(self) -> bool:
        """False when nothing in the library matches the question well."""
        return bool(self.hits)


def _page_to_part(fused: dict[str, float], records: dict[str, Record]) -> None:
    """A whole page that matched hands its score to its best passage, table or figure among
    the candidates, and leaves: the part is what a reader wants outlined, and the answer
    stage reads the whole page anyway. A page none of whose parts matched stays, standing
    for an answer spread over it."""
    best: dict[tuple[str, int], str] = {}
    for rid, score in fused.items():
        rec = records.get(rid)
        if rec is not None and rec.kind != "page":
            key = (rec.manual, rec.page)
            if key not in best or score > fused[best[key]]:
                best[key] = rid
    for rid in [r for r, rec in records.items() if rec.kind == "page" and r in fused]:
        part = best.get((records[rid].manual, records[rid].page))
        if part is not None:
            fused[part] = max(fused[part], fused.pop(rid))


def resolve_manuals(store: Store, manuals: Sequence[str] | None) -> list[str] | None:
    """Accept file names or paths for --manual; None means the whole library."""
    if not manuals:
        return None
    from pathlib import Path

    known = {m.name for m in store.manuals()}
    names = []
    for item in manuals:
        name = Path(item).name
        if name not in known:
            from manualrag.errors import ManualNotFound

            raise ManualNotFound(name)
        names.append(name)
    return names


class Retriever:
    def __init__(self, store: Store, embedder: Embedder, settings: RetrievalSettings) -> None:
        self.store = store
        self.embedder = embedder
        self.settings = settings

    def search(
        self,
        query: str,
        manuals: Sequence[str] | None = None,
        k: int | None = None,
        kinds: Sequence[str] | None = None,
    ) -> SearchResult:
        started = time.perf_counter()
        k = k or self.settings.k
        names = resolve_manuals(self.store, manuals)
        visible = self.store.visible_ids(names)
        query = query.strip()
        if not visible or not query:
            return SearchResult(query, [], seconds=time.perf_counter() - started)
        n = max(self.settings.candidates, k * 3)
        vector = self.embedder.embed_queries([query])[0]
        # With a pixel embedder the question is matched against words and figure pixels
        # separately: cross-modal cosines run far below text-to-text ones (the modality
        # gap), so one merged list would bury every pixel match. Fusion ranks each apart.
        pixel_model = self.embedder.image_input
        whole = names is None
        # Parts (passages, tables, figures) and whole pages are ranked in lists of their own:
        # a page of one passage would otherwise take a second place beside it in every list
        # and push the other candidates down a rank.
        parts = [k for k in (kinds or PART_KINDS) if k != "page"]
        want_pages = kinds is None or "page" in kinds
        modality = "text" if pixel_model else None
        dense = self.store.dense(vector, visible, n, parts, whole_library=whole, modality=modality) if parts else []
        keyword = self.store.library.keyword(query, visible, n, parts, whole_library=whole) if parts else []
        dense_pages = self.store.dense(vector, visible, n, ["page"], whole_library=whole) if want_pages else []
        keyword_pages = self.store.library.keyword(query, visible, n, ["page"], whole_library=whole) if want_pages else []
        pixels = (
            self.store.dense(vector, visible, n, ["figure"], whole_library=whole, modality="image")
            if pixel_model and "figure" in parts
            else []
        )
        best = max([s for _, s in dense[:1] + dense_pages[:1]], default=0.0)
        if best < MIN_DENSE_SIMILARITY and not keyword and not keyword_pages:
            return SearchResult(query, [], best, 0, time.perf_counter() - started)

        fused: dict[str, float] = {}
        for weight, ranked in ((DENSE_WEIGHT, dense), (KEYWORD_WEIGHT, keyword), (DENSE_WEIGHT, dense_pages),
                               (KEYWORD_WEIGHT, keyword_pages), (self.settings.image_weight, pixels)):
            for rank, (rid, _) in enumerate(ranked):
                fused[rid] = fused.get(rid, 0.0) + weight / (self.settings.rrf_k + rank + 1)
        records = self.store.library.records(list(fused))
        _page_to_part(fused, records)
        ordered = sorted(fused, key=fused.__getitem__, reverse=True)

        # Figures named by the best passages come along with them.
        wanted_labels = [
            ref
            for rid in ordered[: k * 2]
            if (rec := records.get(rid)) is not None and rec.kind != "figure"
            for ref in rec.figure_refs
        ]
        if wanted_labels and (kinds is None or "figure" in kinds):
            by_label: dict[tuple[str, str], Record] = {}
            for fig in self.store.library.figures_by_label(visible, sorted(set(wanted_labels))):
                by_label.setdefault((fig.manual, fig.figure), fig)
            for rid in ordered[: k * 2]:
                rec = records.get(rid)
                if rec is None or rec.kind == "figure":
                    continue
                for ref in rec.figure_refs:
                    fig = by_label.get((rec.manual, ref))
                    if fig is None:
                        continue
                    linked = fused[rid] * LINKED_FIGURE_FACTOR
                    if fused.get(fig.id, 0.0) < linked:
                        fused[fig.id] = linked
                        records[fig.id] = fig
            ordered = sorted(fused, key=fused.__getitem__, reverse=True)

        ref = find_page_refs(query)
        pinned = self._referenced_pages(ref, names, ordered, records) if ref else []
        if pinned:
            # "the figure on page 12": the pages the question names come first, their records
            # in their own fused order (those neither side matched after those that did).
            for rec in self.store.library.on_pages(visible, pinned, kinds):
                records.setdefault(rec.id, rec)
                fused.setdefault(rec.id, 0.0)
            named = set(pinned)
            ordered = sorted(fused, key=lambda rid: (
                (records[rid].manual, records[rid].page) not in named if rid in records else True,
                -fused[rid],
            ))

        hits = self._diverse(ordered, records, fused, k)
        return SearchResult(
            query,
            hits,
            best,
            len(keyword),
            time.perf_counter() - started,
            trace={"dense": dense[:k * 2], "keyword": keyword[:k * 2], "pixels": pixels[:k * 2],
                   "pages_named": [f"{m} p.{p}" for m, p in pinned]},
            pages_named=pinned,
            vector=vector,
        )

    def catalog_facts(self, question: str, result: SearchResult) -> list[Hit]:
        """For "how many" questions about named pages, or about a manual's figures or tables:
        the catalog's count as a source of its own (rag/catalog.py)."""
        if not result.hits or not wants_count(question, bool(result.pages_named)):
            return []
        facts: list[Hit] = []
        if result.pages_named:
            by_manual: dict[str, list[int]] = {}
            for manual, page in result.pages_named:
                by_manual.setdefault(manual, []).append(page)
            for manual, pages in by_manual.items():
                visible = self.store.visible_ids([manual])
                records = self.store.library.on_pages(visible, [(manual, p) for p in pages], ["figure", "table"])
                if (fact := catalog_fact(manual, records, pages)) is not None:
                    facts.append(fact)
            return facts
        manual = result.hits[0].manual  # "how many figures" of the manual that answers best
        info = self.store.manual(manual)
        if info is not None:
            records = [r for r in self.store.library.records_of(info.ingest_id) if r.kind in ("figure", "table")]
            if (fact := catalog_fact(manual, records, None)) is not None:
                facts.append(fact)
        return facts

    def _referenced_pages(self, ref: PageRef, names: Sequence[str] | None, ordered: list[str],
                          records: dict[str, Record]) -> list[tuple[str, int]]:
        """The (manual, page) pairs a page reference names: in the manuals searched, or with the
        whole library, in the manuals of the best few results (not page 12 of every manual)."""
        manuals = list(names or [])
        if not manuals:
            for rid in ordered:
                rec = records.get(rid)
                if rec is not None and rec.manual not in manuals:
                    manuals.append(rec.manual)
                if len(manuals) >= REFERENCE_MANUALS:
                    break
        out: list[tuple[str, int]] = []
        for name in manuals:
            info = self.store.manual(name)
            if info is not None:
                out += [(name, page) for page in resolve(ref, info.page_labels, info.pages)]
        return out

    def not_covered(self, question: str, manuals: Sequence[str] | None = None) -> list[str]:
        """What the question names that the manuals searched don't have: codes ("KS07"),
        proper names ("Dayton") and figures or tables ("Figure 9-40") that no record of them
        mentions, nor any manual's title, and pages none of them has ("page 40" of a 26-page
        brochure). Whatever is said of these comes from elsewhere (a model shown KS01's row
        answers for KS07). A name counts as absent only when every word of it is: "Northwind
        Service Portal" is covered by a manual that says "Northwind Service"."""
        names = resolve_manuals(self.store, manuals)
        out = self._missing_pages(question, names)
        codes, proper = question_codes(question), question_names(question)
        labels = [label for label in find_refs(question) if label.startswith(("Figure ", "Table "))]
        if not codes and not proper and not labels:
            return out
        visible = self.store.visible_ids(names)
        titles = " ".join(m.name for m in self.store.manuals()).lower()

        def absent(word: str) -> bool:
            return word.lower() not in titles and not self.store.library.keyword(word, visible, 1)

        def spaced(code: str) -> bool:
            # Read among the records that have the code's longest part ("48" of "K48C2N").
            found = self.store.library.keyword(max(code_parts(code), key=len), visible, _SPACED_CODE_CANDIDATES)
            return any(spells_code(code, r.text) for r in self.store.library.records([i for i, _ in found]).values())

        # A figure or table is there when a record carries its label or any text has its
        # number ("2-7" for "Figure 2-7"): a caption OCR missed is still mentioned in prose.
        carried = {r.figure for r in self.store.library.figures_by_label(visible, labels)}
        missing = [label for label in labels if label not in carried and absent(label.split(" ", 1)[1])]
        return (out + missing + [c for c in codes if absent(c) and not spaced(c)]
                + [" ".join(n) for n in proper if all(absent(w) for w in n)])

    def _missing_pages(self, question: str, names: Sequence[str] | None) -> list[str]:
        """The pages the question names, when no manual searched has any of them."""
        ref = find_page_refs(question)
        if ref is None or ref.cover:
            return []
        infos = [i for n in names or [m.name for m in self.store.manuals()] if (i := self.store.manual(n))]
        if not infos or any(resolve(ref, i.page_labels, i.pages) for i in infos):
            return []
        named = [*ref.labels, *(f"{a}-{b}" for a, b in ref.ranges)]
        where = f"{infos[0].name} has {infos[0].pages} pages" if len(infos) == 1 else "no manual searched has it"
        return [f"page{'s' if len(named) > 1 or ref.ranges else ''} {', '.join(named)} ({where})"]

    def page_texts(self, hits: Sequence[Hit], overleaf: bool = False) -> dict[tuple[str, int], str]:
        """The whole text of each page the hits are on (the answer stage reads pages); with
        `overleaf`, of the page after each passage's too (where a passage may run on)."""
        wanted = sorted({(h.manual, h.page) for h in hits} | {(h.manual, h.page + 1) for h in hits
                                                              if overleaf and h.kind == "text"})
        if not wanted:
            return {}
        visible = self.store.visible_ids(sorted({m for m, _ in wanted}))
        return {(r.manual, r.page): r.text for r in self.store.library.on_pages(visible, wanted, ["page"])}

    def search_image(self, image: Path, manuals: Sequence[str] | None = None, k: int | None = None) -> SearchResult:
        """Figures that look like a photo (a part, a panel, a diagram), each followed by a passage of its page.

        Dense only, image to figure pixels: the keyword side has no words to match.
        """
        started = time.perf_counter()
        if not self.embedder.image_input:
            raise EmbedderUnavailable(IMAGE_SEARCH_HINT)
        k = k or self.settings.k
        names = resolve_manuals(self.store, manuals)
        visible = self.store.visible_ids(names)
        if not visible:
            return SearchResult(str(image), [], seconds=time.perf_counter() - started)
        vector = self.embedder.embed_images([image])[0]
        n = max(self.settings.candidates, k * 3)
        found = self.store.dense(vector, visible, n, ["figure"], whole_library=names is None, modality="image")
        records = self.store.library.records([rid for rid, _ in found])
        figures = [(records[rid], sim) for rid, sim in found if rid in records]
        passages = self.store.library.passages_on_pages(visible, sorted({(f.manual, f.page) for f, _ in figures}))
        root = str(self.store.root.resolve())
        hits: list[Hit] = []
        shown: set[str] = set()
        for fig, sim in figures:
            if len(hits) >= k:
                break
            hits.append(fig.hit(sim, root))
            on_page = [p for p in passages if (p.manual, p.page) == (fig.manual, fig.page) and p.id not in shown]
            # The passage that names the figure explains it best; else the page's first one.
            passage = next((p for p in on_page if fig.figure and fig.figure in p.figure_refs), None)
            passage = passage or (on_page[0] if on_page else None)
            if passage is not None and len(hits) < k:
                shown.add(passage.id)
                hits.append(passage.hit(sim * LINKED_FIGURE_FACTOR, root))
        return SearchResult(
            str(image),
            hits,
            found[0][1] if found else 0.0,
            0,
            time.perf_counter() - started,
            trace={"pixels": found[: k * 2]},
        )

    def _diverse(self, ordered: list[str], records: dict[str, Record], scores: dict[str, float], k: int) -> list[Hit]:
        """Best first, at most ``max_per_page`` results of one kind from one page.

        Kinds count apart: a table is often the answer on a page whose prose ranks above
        it (a value sits in a table below two paragraphs about it).
        """
        per_page: dict[tuple[str, int, str], int] = {}
        pages: set[tuple[str, int]] = set()
        hits: list[Hit] = []
        root = str(self.store.root.resolve())
        for rid in ordered:
            rec = records.get(rid)
            if rec is None:
                continue
            key = (rec.manual, rec.page, rec.kind)
            limit = 1 if rec.kind == "page" else self.settings.max_per_page
            # A whole page adds nothing once a passage or figure of it is in: it stands for
            # the page only where the page as a whole matched better than any part of it.
            if per_page.get(key, 0) >= limit or (rec.kind == "page" and (rec.manual, rec.page) in pages):
                continue
            pages.add((rec.manual, rec.page))
            per_page[key] = per_page.get(key, 0) + 1
            hits.append(rec.hit(scores[rid], root))
            if len(hits) >= k:
                break
        return hits
