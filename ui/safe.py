"""Rendering untrusted text: manual passages and model output reach the page only as text.

A PDF can carry HTML or script in its text layer, and a model can be talked into
writing ``![x](http://evil/track.png)``: loaded, that image leaks the question to
another host; a link invites a click. Streamlit's markdown already refuses raw HTML,
but it does load images and makes links and bare URLs clickable. So before any such
text goes to ``st.markdown`` it is escaped here, keeping the harmless formatting
(paragraphs, lists, emphasis, tables, code) and the ``[n]`` citation keys readable:

- ``<`` ``>`` ``&`` become entities: no tag survives, and ``<http://...>`` autolinks die;
- every ``[`` and ``]`` is escaped: no inline or reference link or image can form;
- bare URLs and e-mail addresses go into code spans, where nothing is autolinked
  (escaping their punctuation is not enough: remark-gfm finds them in the text after
  escapes are resolved, measured in Chromium);
- ``$`` is escaped (no KaTeX, whose ``\\href`` is a link); with ``[`` escaped, Streamlit's
  ``:red[...]`` directives can't form either.

Code is kept, but only in shapes whose extent markdown cannot read differently from
us: a guess at where markdown's own code ends would leave whatever lies past it
unescaped (a code span "closed" across a blank line, a table cell border or a fence
with a backtick in its info string all let an image through, measured in Chromium).
So the text is read line by line: a fenced block is written out again as a fence of
our own, at the margin and longer than any backtick run inside it; a code span is
kept only within one line and without ``|``; every other backtick and tilde is
escaped, so no code span or fence can open anywhere else, and indentation is capped
so that no indented code block hides a line from us either.
"""

from __future__ import annotations

import re
from pathlib import Path

# Fences are read liberally (any indent): whatever we take for a fence is rewritten as
# a canonical one, and everything else has its backticks and tildes escaped.
_FENCE_OPEN = re.compile(r"^[ \t]*(?P<run>`{3,}|~{3,})(?P<info>.*)$")
_LANGUAGE = re.compile(r"[\w+#.-]{1,20}")
_BACKTICKS = re.compile(r"`+")
# One line, no table-cell border: the shapes of code span markdown and we agree on.
_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)[^|\n]*?(?<!`)\1(?!`)")
# Wherever GFM would autolink (after punctuation or "_" too, so no \b), and a bit more.
_URL = re.compile(
    r"(?<![A-Za-z0-9])(?:(?:https?|ftp|file|data|javascript|mailto|xmpp):|www\.)[^\s<>`\"'|]*[^\s<>`\"'|.,;:!?)\]]"
)
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_LINKISH = re.compile(f"{_URL.pattern}|{_EMAIL.pattern}", re.IGNORECASE)
_INDENT = re.compile(r"^[ \t]+")
MAX_INDENT = 3  # four spaces would make an indented code block, where entities show literally


def safe_markdown(text: str) -> str:
    """Markdown that shows `text` with its formatting but no HTML, images, links or math."""
    if not text:
        return ""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        opened = _FENCE_OPEN.match(lines[i])
        if opened is None or (opened["run"][0] == "`" and "`" in opened["info"]):
            out.append(_line(lines[i]))
            i += 1
            continue
        run = opened["run"]
        end = i + 1
        while end < len(lines) and not _closes(lines[end], run):
            end += 1
        out.append(_fence(lines[i + 1 : end], opened["info"]))
        i = end + 1  # past the closing line (or the end of the text: an unclosed fence runs on)
    return "\n".join(out)


def _closes(line: str, run: str) -> bool:
    stripped = line.strip(" \t")
    return len(stripped) >= len(run) and stripped == run[0] * len(stripped)


def _fence(body: list[str], info: str) -> str:
    """A fenced block of our own: at the margin, so no list or quote can end it early, and
    longer than any backtick run inside, so no line of the body can close it."""
    longest = max((len(m.group(0)) for line in body for m in _BACKTICKS.finditer(line)), default=0)
    fence = "`" * max(3, longest + 1)
    language = _LANGUAGE.match(info.strip())
    return "\n".join([fence + (language.group(0) if language else ""), *body, fence])


def _line(line: str) -> str:
    """One line outside any fence: code spans kept, everything else escaped."""
    indent = _INDENT.match(line)
    if indent:
        width = len(indent.group(0).expandtabs(4))
        line = " " * min(width, MAX_INDENT) + line[indent.end() :]
    out: list[str] = []
    last = 0
    for span in _CODE_SPAN.finditer(line):
        out.append(_escape_plain(line[last : span.start()]))
        out.append(span.group(0))
        last = span.end()
    out.append(_escape_plain(line[last:]))
    return "".join(out)


def _escape_plain(text: str) -> str:
    """Escape one stretch of a line that is outside any code span."""
    out: list[str] = []
    last = 0
    for match in _LINKISH.finditer(text):
        out.append(_escape_chars(text[last : match.start()]))
        out.append(f"`{match.group(0)}`")  # shown, copyable, never a link
        last = match.end()
    out.append(_escape_chars(text[last:]))
    return "".join(out)


def _escape_chars(text: str) -> str:
    text = text.replace("\\", "\\\\")  # first: the escapes below must stay escapes
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for sign in "[]$`~":
        text = text.replace(sign, "\\" + sign)
    return text


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
    a manual's name or a question comes from whoever typed it. Every ASCII punctuation
    mark is backslash-escaped; URLs and e-mail addresses go into code spans, as escaping
    does not stop GFM from linking them.
    """
    flat = " ".join(str(text).split())
    if width is not None and len(flat) > width:
        flat = flat[: width - 1] + "…"
    out: list[str] = []
    last = 0
    for match in _LINKISH.finditer(flat):
        out.append(_PUNCT.sub(r"\\\1", flat[last : match.start()]))
        out.append(f"`{match.group(0)}`")
        last = match.end()
    out.append(_PUNCT.sub(r"\\\1", flat[last:]))
    return "".join(out)
