"""Evidence: the sentences, table rows and diagram labels of each source that bear on the question.

The embedded model reads about 100 prompt tokens a second on 2 cores, and a 1.5B model
answers better from a few relevant lines than from eight whole chunks: it copies the
wrong row of a long table, or the header of a source instead of its content. So each
source is cut down to its units (sentences of text, rows of a table, lines of labels
read from a diagram) that share the question's rarer words, kept in their order, with
a table's header and a figure's caption always kept so a row or a label still means
something. This is extractive: every word shown is the manual's own, so citations and
the check for unsupported values keep working on what the model actually read.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

GAP = " […] "

_WORD = re.compile(r"[a-z0-9]+(?:[.,/-][a-z0-9]+)*")
_SENTENCE_END = re.compile(r"(?<=[.!?:;])\s+(?=[\"'(\[]?[A-Z0-9])")
_TABLE_RULE = re.compile(r"^\|?\s*:?-{3,}")
# Words that say nothing about which line answers: question words, glue, and the
# words every question about a manual uses.
_STOP = frozenset(
    """a an and are as at be by can do does for from has have how i in is it its of on or
    that the their there these this those to was what when where which who why will with
    you your should would could shown show shows listed list given give manual manuals
    according called name named described describe""".split()
)


def terms(text: str) -> set[str]:
    """Crudely stemmed content words ('fuses', 'fused' -> 'fus'), numbers kept as written."""
    out = set()
    for word in _WORD.findall(text.lower()):
        if word in _STOP:
            continue
        out.add(_stem(word))
    return out


def _stem(word: str) -> str:
    if word[0].isdigit():
        return word
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            word = word[: -len(suffix)]
            break
    # "fuse", "fuses", "fused" -> "fus"; "rate", "rated", "rating" -> "rat"
    return word[:-1] if len(word) > 3 and word.endswith("e") else word


@dataclass(slots=True)
class Unit:
    text: str
    tokens: int
    terms: set[str]
    fixed: bool = False  # always shown: a table's title and header, a figure's caption
    score: float = 0.0
    keep: bool = False


@dataclass(slots=True)
class SourceText:
    """A source's body split into units, and how they join back."""

    units: list[Unit]
    joiner: str  # " " for prose, "\n" for table rows and label lines


def split_units(body: str, kind: str, estimate: Callable[[str], int], max_tokens: int = 120) -> SourceText:
    """Units of one source body; `estimate` maps text to tokens, longer units are cut."""
    units: list[Unit] = []

    def add(text: str, fixed: bool = False) -> None:
        text = text.strip()
        if not text:
            return
        if estimate(text) > max_tokens:  # a run-on "sentence" (OCR without full stops)
            words = text.split()
            while len(words) > 8 and estimate(" ".join(words)) > max_tokens:
                words = words[: len(words) * 3 // 4]
            text = " ".join(words) + " […]"
        units.append(Unit(text, estimate(text) + 1, terms(text), fixed))

    if kind == "table":
        lines = body.splitlines()
        rule = next((i for i, line in enumerate(lines) if _TABLE_RULE.match(line.strip())), -1)
        for i, line in enumerate(lines):
            add(line, fixed=i <= rule)  # title, header row and the |---| rule
        return SourceText(units, "\n")
    if kind == "figure":
        for i, line in enumerate(body.splitlines()):
            add(line, fixed=i == 0)  # "Labels read from the diagram:"
        return SourceText(units, "\n")
    for paragraph in body.splitlines():
        for sentence in _SENTENCE_END.split(paragraph):
            add(sentence)
    return SourceText(units, " ")


def select(question: str, sources: Sequence[SourceText], budget: int) -> list[str]:
    """Each source's units that best match `question`, within `budget` tokens in all.

    Every source keeps its fixed units and its best unit (the model can't cite a source
    it sees nothing of); the rest of the budget goes to the best-scoring units anywhere.
    A word's weight is its inverse frequency among all the units, so "aluminum" counts
    and "resistance", in every line of a chapter on resistance, barely does.
    """
    wanted = terms(question)
    units = [u for s in sources for u in s.units]
    df: dict[str, int] = {}
    for unit in units:
        for term in unit.terms & wanted:
            df[term] = df.get(term, 0) + 1
    total = max(len(units), 1)
    for unit in units:
        unit.score = sum(math.log(1 + total / df[t]) for t in unit.terms & wanted)
        unit.keep = False

    used = 0
    for source in sources:
        for unit in source.units:
            if unit.fixed:
                unit.keep, used = True, used + unit.tokens
        free = [u for u in source.units if not u.fixed]
        if free:
            best = max(free, key=lambda u: (u.score, -u.tokens))
            best.keep, used = True, used + best.tokens
    # Manuals state the topic in one sentence and the value or the reason in the next
    # ("Some rubber tapes are made for special applications. These tapes are
    # semiconducting..."): the sentence after each source's best one comes next.
    used = _neighbours(sources, used, budget)
    # Best score per token first: a short matching line beats a long one matching the same.
    rest = sorted((u for u in units if not u.keep and u.score > 0), key=lambda u: -u.score / math.sqrt(u.tokens))
    for unit in rest:
        if used + unit.tokens <= budget:
            unit.keep, used = True, used + unit.tokens
    _neighbours(sources, used, budget)
    return [_join(source) for source in sources]


def _neighbours(sources: Sequence[SourceText], used: int, budget: int) -> int:
    """Keep the prose sentence after (then before) each kept one while the budget lasts."""
    for source in sources:
        if source.joiner != " ":
            continue
        for i in [i for i, u in enumerate(source.units) if u.keep]:
            for j in (i + 1, i - 1):
                if 0 <= j < len(source.units) and not source.units[j].keep:
                    unit = source.units[j]
                    if used + unit.tokens <= budget:
                        unit.keep, used = True, used + unit.tokens
    return used


def _join(source: SourceText) -> str:
    parts: list[str] = []
    skipped = False
    for unit in source.units:
        if not unit.keep:
            skipped = True
            continue
        if parts and skipped:
            parts.append("[…]")
        parts.append(unit.text)
        skipped = False
    if skipped and parts:
        parts.append("[…]")
    return source.joiner.join(parts)
