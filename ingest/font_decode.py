"""Decoding text layers whose font maps glyphs to the wrong characters.

A font with a broken or missing ToUnicode map (NEETS: Type 1 fonts converted from
TrueType, glyphs named ``/g68``) prints the right glyphs but extracts as junk, "•ìê" for
"the". The junk is a fixed substitution per font: one glyph, one wrong character. So once
OCR has read a few junk lines, pairing their words with the text layer's words teaches
the substitution, and the rest of that font's text, on every later page, decodes without
OCR (~3 s a page on 2 cores). A character never seen in a learned pair, or read in
disagreeing ways, is unknown: text holding one stays junk and goes to OCR, which in turn
teaches more.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Container, Sequence
from difflib import SequenceMatcher

import pymupdf

from ingest.tables import Word

# A junk character decodes to its most common reading when at least this share of its
# readings agree (OCR misreads, words paired by mistake; on NEETS the least agreeing
# character agreed in 29 of 31 readings). Lines holding it are read again until this many
# readings agree, so that one misreading is outvoted, at most MAX_TRIES times: a character
# OCR reads in ways that never agree (two glyphs sharing one junk character) stays junk.
MIN_AGREEMENT = 0.9
SURE_VOTES = 2
MAX_TRIES = 4

Glyph = tuple[str, str]  # (character as extracted, font name)
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

    def fonts(self) -> set[str]:
        """Fonts with anything learned: the fonts that were junk somewhere in the document."""
        return set(self._votes)

    def wants(self, glyphs: Sequence[Glyph], junk_fonts: Container[str]) -> set[Glyph]:
        """The characters of ``junk_fonts`` in a line that reading it might teach."""
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
        """Pair a text-layer line (its characters with their fonts) with what OCR read in
        the same place; returns how many characters of ``junk_fonts`` were paired.

        Words are paired by length along runs of equal lengths, so a word OCR split,
        merged or missed costs only that word. One glyph reads as one character: a
        ligature ("ﬁ" read as "fi") changes its word's length and is skipped. A line
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

    def words(self, page: pymupdf.Page, clip: Box, fonts: Container[str]) -> list[Word] | None:
        """Positioned words in ``clip``, as ``page.get_text("words")`` gives them, with the
        text of ``fonts`` decoded (to fill table cells); None when a character is unknown."""
        words: list[Word] = []
        flags = pymupdf.TEXTFLAGS_RAWDICT & ~pymupdf.TEXT_PRESERVE_IMAGES
        for block in page.get_text("rawdict", clip=clip, flags=flags)["blocks"]:
            for line in block.get("lines", ()):
                chars: list[tuple[str, Box]] = []
                for span in line["spans"]:
                    for char in span["chars"]:
                        text: str | None = char["c"]
                        if span["font"] in fonts:
                            text = self.decode(span["font"], char["c"])
                            if text is None:
                                return None
                        chars.append((text, tuple(char["bbox"])))  # type: ignore[arg-type]
                words += _positioned(chars)
        return words


def _positioned(chars: Sequence[tuple[str, Box]]) -> list[Word]:
    """Characters of one line as words, each with the box around its characters."""
    out: list[Word] = []
    run: list[tuple[str, Box]] = []
    for text, box in [*chars, (" ", (0.0, 0.0, 0.0, 0.0))]:
        if not text.isspace():
            run.append((text, box))
        elif run:
            boxes = [b for _, b in run]
            out.append((
                min(b[0] for b in boxes), min(b[1] for b in boxes),
                max(b[2] for b in boxes), max(b[3] for b in boxes),
                "".join(t for t, _ in run),
            ))
            run = []
    return out
