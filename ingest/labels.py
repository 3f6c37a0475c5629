"""Figure and table labels: one normal form shared by captions, mentions and queries.

"Figure 3-11.—Wiring diagram.", "see fig. 3-11", "FIGURE 3–11" all become "Figure 3-11";
"Table 1-1" stays a table. Appendix plates ("Appendix II") are labels too.
"""

from __future__ import annotations

import re

_NUMBER = r"(?:[A-Z]{1,3}-)?\d+(?:\s*[-–—.]\s*\d+)?[a-z]?"
_MENTION = re.compile(
    rf"\b(?P<kind>fig(?:ure)?s?|tables?|appendix)\.?\s+(?P<num>{_NUMBER}|[IVX]+)\b", re.IGNORECASE
)
# A caption opens its block: "Figure 3-11.—Wiring diagram." / "Fig. 2 Pump" / "Table 1-1.—..."
_CAPTION = re.compile(
    rf"^\s*(?P<kind>fig(?:ure)?|table)\.?\s+(?P<num>{_NUMBER})(?:(?:\s*[.:—–-]+\s*|\s+)(?P<title>\S.*))?[\s.:—–-]*$",
    re.IGNORECASE | re.DOTALL,
)


def _norm_number(num: str) -> str:
    return re.sub(r"\s*[-–—]\s*", "-", num.strip())


def normalize_label(kind: str, number: str) -> str:
    kind = kind.lower().rstrip("s.")
    word = {"fig": "Figure", "figure": "Figure", "table": "Table", "appendix": "Appendix"}.get(kind, kind.title())
    return f"{word} {_norm_number(number)}"


def find_refs(text: str) -> tuple[str, ...]:
    """Labels a passage mentions, in order of first mention, without repeats."""
    seen: dict[str, None] = {}
    for match in _MENTION.finditer(text):
        num = match.group("num")
        # "figure 3.5 volts" is rare; "fig 3-11" and "table 2-1" are what manuals write.
        seen.setdefault(normalize_label(match.group("kind"), num), None)
    return tuple(seen)


def parse_caption(text: str) -> tuple[str, str] | None:
    """(label, title) when the text is a figure or table caption, else None."""
    match = _CAPTION.match(text.strip())
    if not match:
        return None
    title = (match.group("title") or "").strip(" \t\n.:—–-")
    return normalize_label(match.group("kind"), match.group("num")), title
