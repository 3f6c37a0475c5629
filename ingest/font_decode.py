"""Decoding text layers whose font maps glyphs to the wrong characters.

A font with a broken or missing ToUnicode map (NEETS: Type 1 fonts converted from
TrueType, glyphs named ``/g68``) prints the right glyphs but extracts as junk, "•ìê" for
"the". The junk is a fixed substitution per font: one glyph, one wrong character. So once
OCR has read a few junk words (cropped where the text layer puts them), pairing them with
the text layer's words teaches the substitution, and the rest of that font's text, on
every later page, decodes without OCR. On NEETS, 50 junk pages cost 5 CPU seconds (70
words read) instead of 196 for OCR, and the decoded words agree with OCR's on 99.8%
(benchmarks/bench_font_decode.py). A character never read, or read in disagreeing ways,
is unknown: text holding one stays junk, for OCR.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Container, Sequence
from difflib import SequenceMatcher

import pymupdf

from ingest.ocr import OcrEngine
from ingest.page_ocr import LineReader
from ingest.tables import Word
from ingest.textcheck import is_garbled
from ingest.textlayer import Draft, Line, center_in

log = logging.getLogger(__name__)

# A junk character decodes to its most common reading when at least this share of its
# readings agree (OCR misreads, words paired by mistake; on NEETS the least agreeing
# character agreed in 29 of 31 readings). Words holding it are read again until this many
# readings agree, so that one misreading is outvoted, at most MAX_TRIES times: a character
# OCR reads in ways that never agree (two glyphs sharing one junk character) stays junk.
MIN_AGREEMENT = 0.9
SURE_VOTES = 2
MAX_TRIES = 4
# A font whose text only looks like junk (code in a monospace font: "img_norm_cfg mmdet.ops")
# is read by OCR as its text layer says: at least READABLE_MIN characters learned, and at
# least READABLE_SHARE of them read as themselves (compatibility forms too: a math italic
# "𝑃" read as "P"). It is not junk, on this page or another. Measured: the software docs'
# code and math fonts read 0.98-1.0 as themselves, NEETS's junk fonts 0.0-0.01.
READABLE_MIN = 10
READABLE_SHARE = 0.9

Glyph = tuple[str, str]  # (character as extracted, font name)
# Glyph names that name no character ("/g68", "/G3", "/glyph12", "/cid45", "/index7").
_BLIND_NAME = re.compile(r"(?:g|glyph|cid|index)\d+", re.IGNORECASE)
_SUBSET_TAG = re.compile(r"^[A-Z]{6}\+")
Box = tuple[float, float, float, float]


def _words(glyphs: Sequence[Glyph]) -> list[list[Glyph]]:
    words: list[list[Glyph]] = [[]]
    for char, font in glyphs:
        if char.isspace():
            words.append([])
        else:
            words[-1].append((char, font))
    return [w for w in words if w]


class FontDecoder:
    """Per-font substitutions learned from OCR, for one document (fonts keyed by name)."""

    def __init__(self) -> None:
        self._votes: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
        self._tries: Counter[Glyph] = Counter()
        self._maps: dict[str, dict[str, str]] = {}
        self._blind: dict[int, bool] = {}  # font xref: its text can only be guessed

    def blind_fonts(self, page: pymupdf.Page) -> set[str]:
        """Fonts of the page whose characters MuPDF can only guess, by the name their spans
        carry: no ToUnicode map, and an encoding whose glyph names name nothing ("/g68").
        Their text is junk even where it is too short to judge by its words: NEETS sets
        a lone "Ω" in such a font, and it extracts as a quote mark."""
        names = set()
        for xref, _, _, basefont, *_ in page.get_fonts():
            if xref not in self._blind:
                self._blind[xref] = _names_say_nothing(page.parent, xref)
            if self._blind[xref]:
                names.add(_SUBSET_TAG.sub("", basefont))
        return names

    def fonts(self) -> set[str]:
        """The fonts that were junk somewhere in the document: anything learned, and not
        ``readable``. A worker carries these to its next pages; one that took a code font for
        junk made every later page that uses it wait on OCR, and which pages that was
        depended on how the pages fell to the workers."""
        return {font for font in self._votes if not self.readable(font)}

    def readable(self, font: str) -> bool:
        """True when OCR reads ``font``'s characters as its text layer gives them: not junk."""
        table = self._map(font)
        same = sum(unicodedata.normalize("NFKC", char) == reading for char, reading in table.items())
        return len(table) >= READABLE_MIN and same >= READABLE_SHARE * len(table)

    def wants(self, glyphs: Sequence[Glyph], junk_fonts: Container[str]) -> set[Glyph]:
        """The characters of ``junk_fonts`` among ``glyphs`` that reading them might teach."""
        return {
            (char, font)
            for char, font in glyphs
            if font in junk_fonts and not char.isspace() and self._tries[(char, font)] < MAX_TRIES
            and not self._sure(font, char)
        }

    def _sure(self, font: str, char: str) -> bool:
        readings = self._votes.get(font, {}).get(char)
        if not readings:
            return False
        votes = readings.most_common(1)[0][1]
        return votes >= SURE_VOTES and votes >= MIN_AGREEMENT * sum(readings.values())

    def learn(self, glyphs: Sequence[Glyph], truth: str, junk_fonts: Container[str]) -> int:
        """Pair text-layer words (their characters with their fonts: a word, a few, a line)
        with what OCR read in the same place; returns how many characters of
        ``junk_fonts`` were paired.

        Words are paired by length along runs of equal lengths, so a word OCR split,
        merged or missed costs only that word. One glyph reads as one character: a
        ligature ("ﬁ" read as "fi") changes its word's length and is skipped. Text
        without any whitespace (the font's space glyph is junk too) is paired character
        by character when it is exactly as long as the reading.
        """
        self._tries.update(self.wants(glyphs, junk_fonts))
        truth = " ".join(truth.split())
        if len(glyphs) == len(truth) and not any(char.isspace() for char, _ in glyphs):
            return self._vote([(glyphs, truth)], junk_fonts)
        junk_words = _words(glyphs)
        true_words = truth.split()
        lengths = SequenceMatcher(
            None, [len(w) for w in junk_words], [len(w) for w in true_words], autojunk=False
        )
        # One equal length is likely by chance in a misaligned line; a run of two or more,
        # or a line of as many words as the reading, is evidence of the same words.
        whole = len(junk_words) == len(true_words)
        pairs = [
            pair
            for a, b, size in lengths.get_matching_blocks()
            if size >= 2 or (size and whole)
            for pair in zip(junk_words[a : a + size], true_words[b : b + size], strict=True)
        ]
        return self._vote(pairs, junk_fonts)

    def _vote(self, pairs: Sequence[tuple[Sequence[Glyph], str]], junk_fonts: Container[str]) -> int:
        paired = 0
        for junk, true in pairs:
            for (char, font), reading in zip(junk, true, strict=True):
                if font in junk_fonts:
                    self._votes[font][char][reading] += 1
                    paired += 1
        if paired:
            self._maps.clear()
        return paired

    def _map(self, font: str) -> dict[str, str]:
        if font not in self._maps:
            table = {}
            for char, readings in self._votes.get(font, {}).items():
                reading, votes = readings.most_common(1)[0]
                if votes >= MIN_AGREEMENT * sum(readings.values()):
                    table[char] = reading
            self._maps[font] = table
        return self._maps[font]

    def known(self, font: str) -> dict[str, str]:
        """What ``font``'s junk characters decode to, as learned so far."""
        return dict(self._map(font))

    def decode(self, font: str, text: str) -> str | None:
        """``text`` in ``font`` as printed, or None when a character's reading is unknown."""
        table = self._map(font)
        out = []
        for char in text:
            if char.isspace():
                out.append(char)
            elif char in table:
                out.append(table[char])
            else:
                return None
        return "".join(out)

    def teach(
        self, page: pymupdf.Page, lines: Sequence[Line], fonts: set[str], ocr: OcrEngine, dpi: int
    ) -> None:
        """OCR junk words of ``lines`` holding characters yet to learn, one word at a time,
        the word teaching most first (the shorter of equals), until none is left to learn.

        Words, not lines: recognition costs by width, and ~30 words taught what 16 lines
        did on the first NEETS page, in half the time; later pages need a word here and
        there, or none."""
        reader = LineReader(page, dpi, ocr)
        kept = [ln.bbox for ln in lines]  # not text under figures or in the margins
        todo = [word for line in glyph_lines(page) for word in phrases(line) if center_in(word[0], kept)]
        while todo:
            count, _, best = max(
                (len(self.wants(glyphs, fonts)), box[0] - box[2], i) for i, (box, glyphs) in enumerate(todo)
            )
            if count == 0:
                return
            box, glyphs = todo.pop(best)
            try:
                text = reader.read(box)
            except Exception as err:  # noqa: BLE001 - the page still goes to OCR as junk
                log.warning("page %d: reading a word to learn its font failed: %s", page.number + 1, err)
                return
            self.learn(glyphs, text, fonts)

    def decode_draft(self, draft: Draft, fonts: set[str], threshold: float) -> None:
        """Replace a block's junk-font text by its decoding when every character of it is
        known and the result reads as words (``is_garbled``); else leave it junk, for OCR."""
        lines = []
        for line in draft.lines:
            if not any(s[0] in fonts and s[3].strip() for s in line.spans):
                lines.append(line)
                continue
            spans = []
            for font, size, bold, text in line.spans:
                if font in fonts and text.strip():
                    decoded = self.decode(font, text)
                    if decoded is None:
                        return
                    text = decoded
                spans.append((font, size, bold, text))
            lines.append(Line(line.bbox, " ".join("".join(s[3] for s in spans).split()), spans, decoded=True))
        if any(ln.decoded for ln in lines) and not is_garbled(" ".join(ln.text for ln in lines), threshold):
            draft.lines = lines

    def words(self, page: pymupdf.Page, clip: Box, fonts: Container[str]) -> list[Word] | None:
        """Positioned words in ``clip``, as ``page.get_text("words")`` gives them, with the
        text of ``fonts`` decoded (to fill table cells); None when a character is unknown."""
        words: list[Word] = []
        for box, glyphs in (word for line in glyph_lines(page, clip) for word in line):
            text = []
            for char, font in glyphs:
                decoded = self.decode(font, char) if font in fonts else char
                if decoded is None:
                    return None
                text.append(decoded)
            words.append((*box, "".join(text)))
        return words


def _names_say_nothing(doc: pymupdf.Document, xref: int) -> bool:
    if doc.xref_get_key(xref, "ToUnicode")[0] != "null":
        return False
    kind, value = doc.xref_get_key(xref, "Encoding")
    if kind == "xref":
        kind, value = doc.xref_get_key(int(value.split()[0]), "Differences")
    elif kind == "dict":
        kind, value = doc.xref_get_key(xref, "Encoding/Differences")
    names = re.findall(r"/([^\s/\[\]]+)", value) if kind == "array" else []
    return bool(names) and 2 * sum(bool(_BLIND_NAME.fullmatch(n)) for n in names) >= len(names)


GlyphWord = tuple[Box, list[Glyph]]


def glyph_lines(page: pymupdf.Page, clip: Box | None = None) -> list[list[GlyphWord]]:
    """The page's lines as extracted, as words with their boxes and their characters' fonts.
    A line whose spaces are junk too is one word."""
    flags = pymupdf.TEXTFLAGS_RAWDICT & ~pymupdf.TEXT_PRESERVE_IMAGES
    out: list[list[GlyphWord]] = []
    for block in page.get_text("rawdict", clip=clip, flags=flags)["blocks"]:
        for line in block.get("lines", ()):
            out.append([])
            run: list[tuple[Glyph, Box]] = []
            chars = [((c["c"], s["font"]), tuple(c["bbox"])) for s in line["spans"] for c in s["chars"]]
            for glyph, box in [*chars, ((" ", ""), (0.0, 0.0, 0.0, 0.0))]:
                if not glyph[0].isspace():
                    run.append((glyph, box))  # type: ignore[arg-type]
                elif run:
                    out[-1].append((_union([b for _, b in run]), [g for g, _ in run]))
                    run = []
    return [line for line in out if line]


def _union(boxes: Sequence[Box]) -> Box:
    x0, y0, x1, y1 = zip(*boxes, strict=True)
    return (min(x0), min(y0), max(x1), max(y1))


def phrases(line: list[GlyphWord], min_chars: int = 3) -> list[GlyphWord]:
    """A line's words to read one at a time, a short one ("+", "of") with the words beside
    it: read alone, a lone "+" came back as the look-alike CJK "十"."""
    out = []
    for i, (box, glyphs) in enumerate(line):
        if len(glyphs) < min_chars:
            around = line[max(i - 1, 0) : i + 2]
            box = _union([b for b, _ in around])
            glyphs = [g for j, (_, word) in enumerate(around) for g in ([(" ", "")] if j else []) + word]
        out.append((box, glyphs))
    return out
