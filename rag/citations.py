"""Citation keys checked after generation: only sources that were offered survive.

The model writes [1], [1, 3], [1][2], [1-3] or "(source 2)". Every form becomes
adjacent single keys "[1][3]" in the clean text (one shape for the UI to link), a key
never offered is removed from the text and the list, and each kept key maps to the
manual, page and figure of source n.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Sequence

from manualrag.types import Citation, Hit
from rag.grounding import ANSWER_SENTENCE, ANSWER_SENTENCE_KEEP, GLUE, terms
from rag.prompts import CANNOT_ANSWER

# "[1]", "[1, 3]", "[1-3]", "[1–3]", "[1,2 and 4]", "[Source 2]", "[source: 2]"
_BRACKET = re.compile(
    r"\[\s*(?:sources?\s*:?\s*)?(\d{1,3}(?:\s*(?:[,;–-]|and|&)\s*\d{1,3})*)\s*\]", re.IGNORECASE
)
# "(source 2)", "(sources 1 and 3)", "(see source 2)"
_PAREN = re.compile(
    r"\(\s*(?:see\s+)?sources?\s*:?\s*(\d{1,3}(?:\s*(?:[,;–-]|and|&)\s*\d{1,3})*)\s*\)", re.IGNORECASE
)
_RANGE = re.compile(r"(\d+)\s*[–-]\s*(\d+)")
# A range wider than this is not a citation a model meant ("[1-300]").
_MAX_RANGE = 20


def parse_keys(group: str) -> list[int]:
    """Numbers inside one citation marker, ranges expanded, in order, without repeats."""
    keys: list[int] = []
    for piece in re.split(r"\s*(?:[,;]|and|&)\s*", group):
        piece = piece.strip()
        if not piece:
            continue
        span = _RANGE.fullmatch(piece)
        if span:
            lo, hi = int(span[1]), int(span[2])
            numbers = range(lo, hi + 1) if 0 <= hi - lo < _MAX_RANGE else [lo, hi]
        else:
            numbers = [int(piece)] if piece.isdigit() else []
        keys.extend(k for k in numbers if k not in keys)
    return keys


def extract_citations(answer_text: str, sources: Sequence[Hit]) -> tuple[str, list[Citation]]:
    """(clean text, citations in order of first use). Source n is sources[n - 1]."""
    used: list[int] = []

    def keep(match: re.Match[str]) -> str:
        valid = [k for k in parse_keys(match[1]) if 1 <= k <= len(sources)]
        used.extend(k for k in valid if k not in used)
        return "".join(f"[{k}]" for k in valid)

    text = _BRACKET.sub(keep, answer_text)
    text = _PAREN.sub(keep, text)
    text = _tidy(text)
    return text, [_citation(k, sources[k - 1]) for k in used]


def _citation(key: int, hit: Hit) -> Citation:
    return Citation(
        key=key,
        hit_id=hit.id,
        manual=hit.manual,
        page=hit.page,
        kind=hit.kind,
        figure=hit.figure,
        image=hit.image,
        section=hit.section,
        bbox=hit.bbox,
    )


def _tidy(text: str) -> str:
    # A removed marker leaves "value ." or "value  and": close the gaps it left.
    text = re.sub(r"[ \t]+([.,;:!?)])", r"\1", text)
    text = re.sub(r"[ \t]{2,}", " ", text)
    text = re.sub(r"\]\s+\[", "][", text)  # "[1] [2]" -> "[1][2]"
    # Keys after a sentence's full stop ("... cooling. [2]") are that sentence's: read one
    # sentence at a time, they would stand alone, citing nothing, and a wrong key could not
    # be moved (``repoint_citations``).
    text = re.sub(r"(?<![.!?])([.!?])[ \t]*((?:\[\d+\])+)(?=\s|$)", r" \2\1", text)
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


# -- "cannot answer" -----------------------------------------------------------------------------


def _normal(text: str) -> str:
    text = text.lower().replace("’", "'").replace("can't", "cannot").replace("n't", " not")
    return " ".join(re.sub(r"[^a-z0-9 ]+", " ", text).split())


_CANNOT = _normal(CANNOT_ANSWER)
# Wordings small models drift to when they mean CANNOT_ANSWER.
_CANNOT_VARIANTS = re.compile(
    r"\b(manuals?|sources?|documents?|context|provided (?:text|information))\b"
    r"(?: i have| provided| given| above)? (?:do|does) not (?:contain|include|provide|say|mention|have)"
    r" (?:the |an |any )?(?:answer|information)"
    r"|\bcannot (?:answer|find the answer)\b.{0,40}\b(?:manuals?|sources?)\b",
)


def says_cannot_answer(text: str) -> bool:
    """True when the text's opening sentence is CANNOT_ANSWER, give or take wording and case."""
    first = ANSWER_SENTENCE.split(text.strip(), maxsplit=1)[0] if text.strip() else ""
    norm = _normal(re.sub(r"\[[^\]]*\]", "", first))
    if not norm:
        return False
    if _CANNOT in norm or difflib.SequenceMatcher(None, norm, _CANNOT).ratio() >= 0.8:
        return True
    return bool(_CANNOT_VARIANTS.search(norm))


def is_answerable(clean_text: str, citations: Sequence[Citation]) -> bool:
    """False when the answer is the cannot-answer sentence (or empty).

    A reply that opens with it but goes on to cite sources is a partial answer: kept
    answerable so its citations are shown.
    """
    if not clean_text.strip():
        return False
    if not says_cannot_answer(clean_text):
        return True
    rest = ANSWER_SENTENCE.split(clean_text.strip(), maxsplit=1)
    return bool(citations) and len(rest) > 1 and len(rest[1].strip()) > 20


# -- answers the model forgot to cite ----------------------------------------------------------------

# Share of a sentence's content words that must occur in one source to cite it unasked.
MIN_OVERLAP = 0.6
MIN_WORDS = 4


def cite_by_overlap(answer_text: str, read: Sequence[str]) -> str:
    """Add [n] to uncited sentences whose words plainly come from source n.

    Small models often copy a source nearly word for word and forget the key. `read` is
    what the model was shown of each source (``Prompt.evidence``): a source is a page, and
    the line copied is often one of the page's, not of the passage retrieval ranked. Only
    for answers with no citation at all; the Answer marks these citations inferred.
    """
    vocab = [terms(text) for text in read]
    out: list[str] = []
    # Splitting with the breaks kept puts a list's line breaks back.
    for sentence in ANSWER_SENTENCE_KEEP.split(answer_text.strip()):
        words = terms(sentence)
        if "[" in sentence or len(words) < MIN_WORDS or not vocab:
            out.append(sentence)
            continue
        scores = [len(words & v) / len(words) for v in vocab]
        best = max(range(len(scores)), key=lambda i: scores[i])
        if scores[best] >= MIN_OVERLAP:
            stripped = sentence.rstrip()
            end = stripped[-1] if stripped[-1:] in ".!?" else ""
            sentence = f"{stripped[: len(stripped) - len(end)]} [{best + 1}]{end}"
        out.append(sentence)
    return "".join(out)


# -- citations on the wrong source ---------------------------------------------------------------

# A sentence's citation stands when its sources hold at least this share of the words it
# adds to the question; it moves to another source only when that one holds at least
# REPOINT_COVER of them and REPOINT_MARGIN more than the cited ones.
CITED_COVER = 0.5
REPOINT_COVER = 0.6
REPOINT_MARGIN = 0.3
_KEYS = re.compile(r"(?:\[\d+\])+")


def repoint_citations(answer_text: str, read: Sequence[str], question: str = "") -> tuple[str, list[int]]:
    """Move a sentence's keys to the source that plainly holds what it says; (text, keys moved).

    A 1.5B model copies the right line and then numbers it wrong: "graphite grease [4]"
    where the grease callout is figure [1]. What a sentence says beyond the question
    ("graphite", "5/16 inch") is looked up in each source; when the cited ones lack it and one other
    source has it, the key moves there; so does a sentence's whole set of numbers, when only
    one source has them. Sentences that add nothing to the question, or whose words several
    sources share equally, keep their keys. `read` is what the model
    was shown of each source (``Prompt.evidence``).
    """
    vocab = [terms(text) for text in read]
    asked = terms(question) | GLUE
    moved: list[int] = []
    out: list[str] = []
    for sentence in ANSWER_SENTENCE_KEEP.split(answer_text):
        keys = [int(k) for k in re.findall(r"\[(\d+)\]", sentence)]
        said = terms(_KEYS.sub(" ", sentence)) - asked
        if not keys or not said or not vocab:
            out.append(sentence)
            continue
        cover = [len(said & v) / len(said) for v in vocab]
        cited = max((cover[k - 1] for k in keys if 1 <= k <= len(cover)), default=0.0)
        best = max(range(len(cover)), key=lambda i: cover[i])
        # The numbers it states weigh most: "12.4 pounds per thousand feet" cites the table
        # row with 12.4, not the sentence about the table's weight column.
        values = {t for t in said if any(c.isdigit() for c in t)}
        holders = [i for i, v in enumerate(vocab) if values and values <= v]
        if len(holders) == 1 and not any(1 <= k <= len(vocab) and values <= vocab[k - 1] for k in keys):
            best = holders[0]
        elif not (cited < CITED_COVER and cover[best] >= REPOINT_COVER and cover[best] >= cited + REPOINT_MARGIN):
            best = -1
        if best >= 0:
            sentence = _KEYS.sub(f"[{best + 1}]", sentence)
            moved.append(best + 1)
        out.append(sentence)
    return "".join(out), moved


# -- citations of the pages a question names ------------------------------------------------------


def cites_near(citations: Sequence[Citation], named: Sequence[tuple[str, int]]) -> bool:
    """Whether a citation points at a page the question names ("on the cover", "on page
    12"), or the page before or after it: a passage runs on over a page break, and a
    document that prints no page numbers is addressed by PDF page, one off from its count."""
    return any(c.manual == manual and abs(c.page - page) <= 1 for c in citations for manual, page in named)


# -- citations of a passage that ran on to the next page -----------------------------------------


def cite_next_page(
    answer_text: str, citations: Sequence[Citation], page_texts: Sequence[str], next_page: Sequence[str],
    question: str = "",
) -> list[Citation]:
    """Citations of a source whose passage ran on to the next page, pointed at that page
    when what the citing sentences say is printed there more than on the source's own.

    A source is a page, and a passage retrieved there that ends overleaf brings its rest
    (the steps of a procedure, the warning after it) under the same key. The reader sent to
    the first page would not find the line. `page_texts[n - 1]` is source n's page's text,
    `next_page[n - 1]` the next page's ("" when no passage of source n runs on to it).
    """
    asked = terms(question) | GLUE
    sentences = ANSWER_SENTENCE.split(answer_text)
    out: list[Citation] = []
    for citation in citations:
        n = citation.key
        overleaf = next_page[n - 1] if n <= len(next_page) else ""
        if overleaf:
            citing = " ".join(s for s in sentences if f"[{n}]" in s)
            said = terms(_KEYS.sub(" ", citing)) - asked
            here = len(said & terms(page_texts[n - 1]))
            if len(said & terms(overleaf)) > here:
                citation = dataclasses.replace(citation, page=citation.page + 1, bbox=None)
        out.append(citation)
    return out
