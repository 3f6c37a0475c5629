"""A line's text from its spans, as a reader sees it: footnote marks apart, exponents raised.

PyMuPDF's plain text and its "words" glue a superscript to what it follows: "Auto
Stop¹⁴" becomes "Stop14", and a spec table's "12.5³ L" the value "12.53".
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pymupdf

from manualrag.types import BBox

Word = tuple[float, float, float, float, str]  # x0, y0, x1, y1, text in PDF points

# Image bytes are not needed; ligatures are spelled out ("ﬁle" reads "file"), or a search
# or a check for "file" misses every word a typesetter joined.
TEXT_FLAGS = pymupdf.TEXTFLAGS_RAWDICT & ~pymupdf.TEXT_PRESERVE_IMAGES & ~pymupdf.TEXT_PRESERVE_LIGATURES

# A footnote mark set in superscript after a word or a stop ("Lock¹⁵", "Guard™", "warranty.¹³"):
# glued to the word it hides it from search ("Lock15"), and it is no number of the text.
# After a digit, a unit or a variable ("4²", "mm²", "x²") a superscript is an exponent: it is
# written as one ("4²", not the "42" that plain text would make of it).
_FOOTNOTE_MARK = re.compile(r"(?:TM|SM|[\d,*†‡§®™\s])+")
_MARKED = re.compile(r"(?:[^\W\d_]{3}|[.,;:)\]®™*'\"’”])$")
_EXPONENT = re.compile(r"-?\d{1,2}")
_BASE = re.compile(r"(?:\d|(?<![^\W\d_])[^\W\d_]{1,2})$")
_RAISED = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def span_texts(spans: Sequence[dict]) -> list[str]:
    """The texts of a line's spans: footnote marks after a word replaced by a space,
    exponents raised."""
    out: list[str] = []
    for span in spans:
        text = span["text"]
        if span["flags"] & pymupdf.TEXT_FONT_SUPERSCRIPT and text.strip():
            mark, before = text.strip(), "".join(out)
            if _EXPONENT.fullmatch(mark) and _BASE.search(before):
                text = mark.translate(_RAISED)
            elif _FOOTNOTE_MARK.fullmatch(mark) and _MARKED.search(before.rstrip()):
                text = " "
        out.append(text)
    return out


def page_words(page: pymupdf.Page, clip: pymupdf.Rect | BBox | None = None) -> list[Word]:
    """``page.get_text("words")`` (x0, y0, x1, y1, text), with superscripts read as
    ``span_texts`` reads them: a footnote mark ends the word, an exponent is raised."""
    words: list[Word] = []
    raw = page.get_text("rawdict", clip=clip, flags=TEXT_FLAGS)
    for block in raw["blocks"]:
        for line in block.get("lines", ()):
            for span in line["spans"]:
                span["text"] = "".join(c["c"] for c in span["chars"])
            chars: list[tuple[str, BBox]] = []

            def flush() -> None:
                if chars:
                    boxes = [box for _, box in chars]
                    words.append((min(b[0] for b in boxes), min(b[1] for b in boxes),
                                  max(b[2] for b in boxes), max(b[3] for b in boxes),
                                  "".join(c for c, _ in chars)))
                    chars.clear()

            for span, text in zip(line["spans"], span_texts(line["spans"])):
                if not text.strip() and span["text"].strip():
                    flush()  # a footnote mark: dropped, and the word ends there
                    continue
                raised = text != span["text"]
                for char in span["chars"]:
                    c = char["c"]
                    if c.isspace():
                        flush()
                    else:
                        chars.append((c.translate(_RAISED) if raised else c, tuple(char["bbox"])))
            flush()
    return words
