"""Citation keys checked after generation: only sources that were offered survive.

The model writes [1], [1, 3], [1][2], [1-3] or "(source 2)". Every form becomes
adjacent single keys "[1][3]" in the clean text (one shape for the UI to link), a key
never offered is removed from the text and the list, and each kept key maps to the
manual, page and figure of source n.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

from manualrag.types import Citation, Hit
from rag.evidence import terms
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
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def says_cannot_answer(text: str) -> bool:
    """True when the text's opening sentence is CANNOT_ANSWER, give or take wording and case."""
    first = _SENTENCE.split(text.strip(), maxsplit=1)[0] if text.strip() else ""
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
    rest = _SENTENCE.split(clean_text.strip(), maxsplit=1)
    return bool(citations) and len(rest) > 1 and len(rest[1].strip()) > 20


# -- values the sources never state ----------------------------------------------------------------

# Unit spellings that mean the same thing, so "20 A" is supported by "20 AMP".
_UNIT_GROUPS = [
    ("a", "amp", "amps", "ampere", "amperes"),
    ("ma", "milliamp", "milliamps"),
    ("v", "volt", "volts", "vac", "vdc"),
    ("mv", "millivolt", "millivolts"),
    ("kv", "kilovolt", "kilovolts"),
    ("w", "watt", "watts"),
    ("kw", "kilowatt", "kilowatts"),
    ("hz", "hertz"),
    ("khz",),
    ("mhz",),
    ("ohm", "ohms", "ω"),
    ("kohm", "kω", "kilohm", "kilohms"),
    ("nm", "n·m", "n-m", "newton-metres", "newton-meters"),
    ("ft-lb", "ft-lbs", "lb-ft", "ft·lb"),
    ("in-lb", "in-lbs", "lb-in"),
    ("psi",),
    ("bar",),
    ("kpa",),
    ("mpa",),
    ("mm", "millimetres", "millimeters"),
    ("cm",),
    ("m", "metres", "meters"),
    ("in", "inch", "inches", '"', "″"),
    ("kg", "kilograms"),
    ("g", "grams"),
    ("lb", "lbs", "pounds"),
    ("l", "litres", "liters"),
    ("ml",),
    ("°c", "degc", "c"),
    ("°f", "degf", "f"),
    ("rpm",),
    ("s", "sec", "secs", "second", "seconds"),
    ("min", "mins", "minute", "minutes"),
    ("h", "hr", "hrs", "hour", "hours"),
    ("%", "percent"),
    ("µf", "uf", "mf"),
]
_UNIT = {spelling: group[0] for group in _UNIT_GROUPS for spelling in group}
_UNIT_PATTERN = "|".join(sorted((re.escape(u) for u in _UNIT), key=len, reverse=True))
# A number not glued to a code ("F1", "F07452"), with an optional known unit after it.
# A fraction ("3/8 inch", "1/2-inch") is one value: a wrong one is as wrong as a decimal.
_QUANTITY = re.compile(
    rf"(?<![\w.,/-])(\d+(?:[.,]\d+)*(?:/\d+)?)(?:[\s-]?({_UNIT_PATTERN}))?(?![\w·/-])", re.IGNORECASE
)
# Codes and part numbers: letters and digits mixed ("F07452", "B31A", "TB1").
_CODE = re.compile(r"\b(?=[A-Za-z]*\d)(?=\d*[A-Za-z])[A-Za-z0-9]+(?:[-/][A-Za-z0-9]+)*\b")


def _degrees(text: str) -> str:
    # Manuals write 200º C (an ordinal sign, a space) as often as 200°C.
    return re.sub(r"[°º˚]\s*([CF])\b", r"°\1", text)


def _quantities(text: str) -> set[tuple[str, str]]:
    text = _degrees(text)
    return {
        (num.replace(",", ""), _UNIT.get(unit.lower(), "") if unit else "")
        for num, unit in _QUANTITY.findall(text)
    }


def unsupported_values(answer_text: str, sources: Sequence[Hit], question: str = "") -> list[str]:
    """Values, units and codes in the answer that no offered source (nor the question) contains.

    Small models sometimes "answer" with a plausible value (a torque, a code) that no
    source states, and cite a source anyway; the citation check can't see that. A
    value with a unit must appear with the same unit, or bare in a source that names
    the unit elsewhere (a table whose header says "(ohms)"); a code, a decimal or a fraction must
    appear; plain integers ("step 3", "page 12") are not checked: too often
    legitimately new. Values the user gave in the question are not the model's invention.
    """
    text = _degrees(re.sub(r"\[\d+\]", " ", answer_text))  # citation keys are not values
    texts = [f"{h.text}\n{h.caption}\n{h.figure}\n{h.section}" for h in sources] + [question]
    known: set[tuple[str, str]] = set()
    bare_with_unit: set[tuple[str, str]] = set()  # a number and a unit named in the same source
    for source in texts:
        found = _quantities(source)
        known |= found
        units = {_UNIT[w] for w in re.findall(r"[a-zµ°ω%]+", source.lower()) if w in _UNIT and len(w) > 2}
        bare_with_unit |= {(num, unit) for num, _ in found for unit in units}
    known_numbers = {num for num, _ in known}
    codes = {c.lower() for text_ in texts for c in _CODE.findall(text_)}
    missing: list[str] = []
    for match in _QUANTITY.finditer(text):
        num, unit = match[1].replace(",", ""), _UNIT.get((match[2] or "").lower(), "")
        if not unit and "." not in num and "/" not in num:
            continue
        supported = (num, unit) in known or (num, unit) in bare_with_unit if unit else num in known_numbers
        if not supported and match[0] not in missing:
            missing.append(match[0])
    for code in _CODE.findall(text):
        if _QUANTITY.fullmatch(code):  # "50V" is a quantity, checked above
            continue
        if code.lower() not in codes and code not in missing:
            missing.append(code)
    return missing


# Words an answer adds around the facts without inventing any ("because", "yes").
_GLUE = frozenset("because cannot can't yes no not up down also only about approximately".split())
# A draft with at least this many content words that no source nor the question has,
# making up at least this share of its content words, is not grounded. A small model
# copies: grounded gold answers had 0-2 such words (inflections mostly), invented
# ones ("the ground wire is green and yellow") 3 and more.
NOVEL_WORDS_MIN = 3
NOVEL_WORDS_SHARE = 0.3


def _source_terms(hit: Hit) -> set[str]:
    return terms(f"{hit.text}\n{hit.caption}\n{hit.figure}\n{hit.section}")


def unsupported_words(answer_text: str, sources: Sequence[Hit], question: str = "") -> list[str]:
    """Content words of the answer that no source and not the question contain, when they
    are enough of the answer to mean it says something the sources don't; else []."""
    said = terms(re.sub(r"\[\d+\]", " ", answer_text)) - _GLUE
    known = terms(question).union(*(_source_terms(h) for h in sources))
    novel = sorted(said - known)
    if len(novel) >= NOVEL_WORDS_MIN and len(novel) >= NOVEL_WORDS_SHARE * max(len(said), 1):
        return novel
    return []


_YES_NO = re.compile(r"^\W*(yes|no)\b", re.IGNORECASE)


def restates_question(answer_text: str, question: str) -> bool:
    """True when the answer says nothing the question didn't: every content word of it is
    the question's ("Which symbols does the appendix show?" -> "The appendix shows the
    symbols [3]."). A yes or a no is an answer, however short."""
    if _YES_NO.match(answer_text) or not question.strip():
        return False
    said = terms(re.sub(r"\[\d+\]", " ", answer_text)) - _GLUE
    return bool(said) and said <= terms(question)


# -- answers the model forgot to cite ----------------------------------------------------------------

_WORD = re.compile(r"[a-z0-9]+(?:[.,][0-9]+)*")
_STOP = frozenset(
    re.findall(
        r"\w+",
        "the a an and or of to in on for with by at from is are was were be been it its this that these "
        "those you your must should can will which what when how before after then than not no into as "
        "if so do does",
    )
)
# Share of a sentence's content words that must occur in one source to cite it unasked.
MIN_OVERLAP = 0.6
MIN_WORDS = 4


def _content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 1}


def cite_by_overlap(answer_text: str, sources: Sequence[Hit]) -> str:
    """Add [n] to uncited sentences whose words plainly come from source n.

    Small models often copy a source nearly word for word and forget the key. Only
    for answers with no citation at all; the Answer marks these citations inferred.
    """
    vocab = [_content_words(f"{h.text} {h.caption} {h.figure}") for h in sources]
    out: list[str] = []
    # The capture keeps the whitespace between sentences, so list line breaks survive.
    for sentence in re.split(r"((?<=[.!?])\s+)", answer_text.strip()):
        words = _content_words(sentence)
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


def repoint_citations(answer_text: str, sources: Sequence[Hit], question: str = "") -> tuple[str, list[int]]:
    """Move a sentence's keys to the source that plainly holds what it says; (text, keys moved).

    A 1.5B model copies the right line and then numbers it wrong: "borax [4]" where the
    borax callout is figure [1]. What a sentence says beyond the question ("borax",
    "3/8 inch") is looked up in each source; when the cited ones lack it and one other
    source has it, the key moves there. Sentences that add nothing to the question, or
    whose words several sources share equally, keep their keys.
    """
    vocab = [_source_terms(h) for h in sources]
    asked = terms(question) | _GLUE
    moved: list[int] = []
    out: list[str] = []
    for sentence in re.split(r"((?<=[.!?])\s+)", answer_text):
        keys = [int(k) for k in re.findall(r"\[(\d+)\]", sentence)]
        said = terms(_KEYS.sub(" ", sentence)) - asked
        if not keys or not said or not vocab:
            out.append(sentence)
            continue
        cover = [len(said & v) / len(said) for v in vocab]
        cited = max((cover[k - 1] for k in keys if 1 <= k <= len(cover)), default=0.0)
        best = max(range(len(cover)), key=lambda i: cover[i])
        if cited < CITED_COVER and cover[best] >= REPOINT_COVER and cover[best] >= cited + REPOINT_MARGIN:
            sentence = _KEYS.sub(f"[{best + 1}]", sentence)
            moved.append(best + 1)
        out.append(sentence)
    return "".join(out), moved
