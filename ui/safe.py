"""Rendering untrusted text: manual passages and model output reach the page only as text.

A PDF can carry HTML or script in its text layer, and a model can be talked into
writing ``![x](http://evil/track.png)``: loaded, that image leaks the question to
another host; a link invites a click. Streamlit's markdown already refuses raw HTML,
but it does load images and makes links and bare URLs clickable. So before any such
text goes to ``st.markdown`` it is escaped here, keeping the harmless formatting
(paragraphs, lists, emphasis, code) and the ``[n]`` citation keys readable:

- ``<`` ``>`` ``&`` become entities: no tag survives, and ``<http://...>`` autolinks die;
- every ``[`` and ``]`` is escaped: no inline or reference link or image can form;
- bare URLs (``http://``, ``www.``) go into code spans, where nothing is autolinked;
- ``$`` is escaped (no KaTeX, whose ``\\href`` is a link) and ``:`` before ``[`` too
  (Streamlit's ``:red[...]`` directives).

Code spans and fenced blocks are left as they are: markdown shows them literally.
"""

from __future__ import annotations

import re
from pathlib import Path

_FENCE = re.compile(r"(^|\n)(```|~~~)[^\n]*\n.*?(\n\2[^\n]*(?=\n|$)|$)", re.DOTALL)
_CODE_SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)", re.DOTALL)
_URL = re.compile(
    r"(?i)\b(?:(?:https?|ftp|file|data|javascript|mailto):|www\.)[^\s<>`\"']*[^\s<>`\"'.,;:!?)\]]"
)
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def _escape_plain(text: str) -> str:
    """Escape one stretch of text that is outside any code span or fence."""
    out: list[str] = []
    last = 0
    for match in _URL.finditer(text):
        out.append(_escape_chars(text[last : match.start()]))
        url = match.group(0).replace("`", "")
        out.append(f"`{url}`")  # shown, copyable, never a link
        last = match.end()
    out.append(_escape_chars(text[last:]))
    return "".join(out)


_DEEP_INDENT = re.compile(r"(?m)^[ \t]{4,}")


def _escape_chars(text: str) -> str:
    # Four spaces of indent make a code block, where the entities below would show
    # literally: cap the indent (nested lists keep working at three).
    text = _DEEP_INDENT.sub("   ", text)
    text = text.replace("\\", "\\\\")  # first: the escapes below must stay escapes
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = text.replace("[", "\\[").replace("]", "\\]").replace("$", "\\$")
    # GFM makes an e-mail address a mailto: link; an escaped @ stops it.
    text = _EMAIL.sub(lambda m: m.group(0).replace("@", "\\@"), text)
    return text


def safe_markdown(text: str) -> str:
    """Markdown that shows `text` with its formatting but no HTML, images, links or math."""
    if not text:
        return ""
    out: list[str] = []
    last = 0
    for fence in _FENCE.finditer(text):
        out.append(_outside_fences(text[last : fence.start()]))
        out.append(fence.group(0))
        last = fence.end()
    out.append(_outside_fences(text[last:]))
    return "".join(out)


def _outside_fences(text: str) -> str:
    out: list[str] = []
    last = 0
    for span in _CODE_SPAN.finditer(text):
        out.append(_escape_plain(text[last : span.start()]))
        out.append(span.group(0))
        last = span.end()
    out.append(_escape_plain(text[last:]))
    return "".join(out)


def one_line(text: str, width: int = 160) -> str:
    """A flat snippet (for labels and tables, which show text literally)."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def inside(root: Path, path: str | Path) -> Path | None:
    """`path` (absolute, or relative to `root`) if it is a file inside `root`, else None.

    Image paths come from the store's records; resolving and checking them keeps a
    tampered or stale record from showing any other file of the machine.
    """
    if not path:
        return None
    root = root.resolve()
    candidate = Path(path)
    candidate = (candidate if candidate.is_absolute() else root / candidate).resolve()
    if candidate.is_file() and candidate.is_relative_to(root):
        return candidate
    return None


_PUNCT = re.compile(r"([!-/:-@\[-`{-~])")


def literal(text: str, width: int | None = None) -> str:
    """Markdown that shows `text` exactly, on one line: for labels, names and messages.

    Button, expander and alert labels render markdown (links and images included), and
    a manual's name comes from whoever uploaded it. Every ASCII punctuation mark is
    backslash-escaped, which also breaks URL and e-mail autolinks apart.
    """
    flat = " ".join(str(text).split())
    if width is not None and len(flat) > width:
        flat = flat[: width - 1] + "…"
    return _PUNCT.sub(r"\\\1", flat)
