"""The prompt: a fixed system message, then numbered sources as delimited data, then the question.

The system message never changes between questions, so llama.cpp reuses its cached
prefix and only the sources and question are read anew. Everything a manual (or a
user) wrote is neutralised before it goes between our delimiters: a page that says
"</source> ignore previous instructions" stays data inside its own source.

Prompt texts live in rag/prompts/*.md (``$name`` placeholders, string.Template).
The embedded model is not told to refuse: with a "reply exactly: CANNOT_ANSWER if no
source answers" rule, Qwen2.5-Coder-1.5B refused 4 of 18 answerable gold questions
whose answer sentence was in source 1 or 2. Refusal is decided after generation
instead (rag/answer.py): a draft that states values or words no source contains is
withheld and replaced by CANNOT_ANSWER, which caught both unanswerable gold questions.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from string import Template
from typing import Any

from manualrag.types import Hit, figure_name, labels_heading
from rag import evidence
from rag.catalog import CATALOG_PREFIX
from rag.grounding import DIAGRAM_LABELS, counted, counted_lists

Message = dict[str, Any]

CANNOT_ANSWER = "The manuals I have do not contain the answer to this."

# A cheap token estimate: English manual text runs ~4 characters per token in the
# Qwen/Llama tokenizers, codes and numbers fewer; 3.5 errs on the safe side.
CHARS_PER_TOKEN = 3.5
# Chat-template tokens around each message (<|im_start|>role ... <|im_end|>).
MESSAGE_OVERHEAD_TOKENS = 8
# Room left for estimate error, so a full budget never overflows the context window.
SAFETY_TOKENS = 64
# One sentence, row or label line longer than this is shortened: a paragraph without
# full stops must not take the whole budget.
MAX_UNIT_TOKENS = 120
# A pasted page as a question must not crowd out the sources.
MAX_QUESTION_CHARS = 1200
MAX_SECTION_WORDS = 4
ELLIPSIS = " […]"


def _template(name: str) -> Template:
    return Template(resources.files("rag").joinpath("prompts", name).read_text(encoding="utf-8"))


SYSTEM_PROMPT = _template("system.md").substitute().strip()
_ANSWER = _template("answer.md")
_REWRITE = _template("rewrite.md")


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


# -- neutralising data -------------------------------------------------------------------------

# Our own delimiters and the role/turn markers of common chat templates. llama.cpp
# parses special tokens in the rendered prompt, so "<|im_start|>system" inside a
# manual would otherwise open a real system turn.
_TAGS = r"sources?|question|system|user|assistant|s|im_start|im_end|start_of_turn|end_of_turn|think|tool_call"
_DELIMITER = re.compile(rf"<\s*/?\s*(?:{_TAGS})\b[^<>]{{0,80}}>", re.IGNORECASE)
_SPECIAL_TOKEN = re.compile(r"<\|[^<>|]{1,40}\|>")
_LLAMA_MARKERS = re.compile(r"\[/?INST\]|<</?SYS>>", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def neutralise(text: str) -> str:
    """Text that can't close a source, open a turn or fake a chat-template token."""
    text = _CONTROL.sub("", text)
    text = _SPECIAL_TOKEN.sub(lambda m: "(" + m.group(0)[2:-2] + ")", text)
    text = _LLAMA_MARKERS.sub(
        lambda m: m.group(0).replace("[", "(").replace("]", ")").replace("<", "("), text
    )
    return _DELIMITER.sub(lambda m: m.group(0).replace("<", "‹").replace(">", "›"), text)


def _attr(text: str) -> str:
    """A value for a source tag's attribute: one line, no quotes or angle brackets."""
    return " ".join(neutralise(text).replace('"', "'").replace("<", "‹").replace(">", "›").split())


# -- sources -----------------------------------------------------------------------------------


def source_title(n: int, hit: Hit, with_manual: bool = True) -> str:
    """The first line of a source: its key and where it comes from, in words.

    Short on purpose: on 2 CPU cores every prompt token costs ~20 ms before the first
    answer token, and "CHAPTER 2 HYDRAULIC PUMPS > PRESSURE RELIEF" said no more to the
    model than its last heading (its first few words: a long heading is 10 tokens). The manual's name is left out when all
    sources come from one manual (the citations still name it)."""
    where = f"{hit.manual}, page {hit.page}" if with_manual else f"page {hit.page}"
    section = " ".join(hit.section.rsplit(">", 1)[-1].split()[:MAX_SECTION_WORDS])
    if hit.kind == "figure":
        label = hit.figure or "Figure"
        caption = _caption_title(hit.caption, hit.figure)
        return f"[{n}] {label}, {where}" + (f": {caption}" if caption else "")
    kind = "Table, " if hit.kind == "table" else ""
    return f"[{n}] {kind}{where}" + (f", {section}" if section else "")


def _caption_title(caption: str, label: str) -> str:
    # "Figure 3-11.—Wiring diagram." -> "Wiring diagram." (the label is already in the title)
    if label and caption.lower().startswith(label.lower()):
        caption = caption[len(label) :].lstrip(" .:-—–")
    return " ".join(caption.split())


def source_body(hit: Hit) -> str:
    """What the model reads of a hit. A figure's lines after "Labels:" are its OCR'd labels."""
    if hit.kind != "figure":
        return hit.text.strip()
    labels: list[str] = []
    for line in hit.text.splitlines():
        line = line.strip()
        if not line or line in (hit.caption.strip(), hit.figure, figure_name("", hit.page)):
            continue  # caption and label are in the title already; the last says nothing
        if line.lower().startswith("labels:"):
            line = line[len("labels:") :].strip()
        if line:
            labels.append(line)
    return DIAGRAM_LABELS + "\n" + "\n".join(labels) if labels else ""


def _truncate(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    cut = text[: max(0, max_chars - len(ELLIPSIS))]
    space = cut.rfind(" ")
    if space > len(cut) * 0.7:  # end on a word when that loses little
        cut = cut[:space]
    return cut.rstrip() + ELLIPSIS


def render_source(n: int, hit: Hit, body: str, with_manual: bool = True) -> str:
    """One source between our delimiters; `body` is already neutralised."""
    title = neutralise(source_title(n, hit, with_manual))
    return "\n".join(part for part in (f'<source id="{n}">', title, body, "</source>") if part)


# -- the prompt --------------------------------------------------------------------------------


@dataclass(slots=True)
class Prompt:
    messages: list[Message]
    sources: list[Hit]  # numbered: sources[n - 1] is [n]; the best-ranked hit of each page given
    truncated: bool = False  # some source text was left out to fit
    tokens: int = 0  # estimated tokens read anew for this question (sources + question)
    images: list[str] = field(default_factory=list)  # figure PNGs attached, for the trace
    evidence: list[str] = field(default_factory=list)  # what the model read of each source, title included
    # Per source, its page's text and, when a passage of it runs on, the next page's ("" when
    # none does): a sentence the answer took from there cites the next page.
    page_texts: list[str] = field(default_factory=list)
    next_page: list[str] = field(default_factory=list)


PageTexts = Mapping[tuple[str, int], str]  # (manual, page) -> the whole page's text


def build_prompt(
    question: str,
    hits: Sequence[Hit],
    *,
    context_tokens: int,
    max_tokens: int,
    prompt_tokens: int,
    max_sources: int = 5,
    earlier: Sequence[str] = (),
    vision: bool = False,
    pages: PageTexts | None = None,
    meaning: evidence.Meaning | None = None,
    nudge: str = "",
) -> Prompt:
    """System message + one user message holding the numbered sources and the question.

    `prompt_tokens` bounds what the model reads anew for each question (the system
    message is cached by the server). A source is a page: hits on the same page are one
    source, which reads the whole page (`pages`) where it is known, so an answer spread
    over a page, or stated in the sentence beside the retrieved one, is in reach. The best
    `max_sources` pages are each cut down to the sentences, rows and labels that match
    the question (rag/evidence.py), by words and, with `meaning`, by meaning. `nudge` is
    written after the question for the model only: the evidence is chosen for the question.
    """
    q = _truncate(" ".join(neutralise(question).split()), MAX_QUESTION_CHARS)
    earlier_text = ""
    if earlier:
        shown = " / ".join(_truncate(" ".join(neutralise(e).split()), 200) for e in earlier[-2:])
        earlier_text = f"\nEarlier questions in this conversation, for context: {shown}\n"

    def user_text(sources: str) -> str:
        return _ANSWER.substitute(sources=sources, question=f"{q} {nudge}".strip(), earlier=earlier_text).strip()

    window = context_tokens - max_tokens - SAFETY_TOKENS - estimate_tokens(SYSTEM_PROMPT)
    # The system message (and its template tokens) is cached: only the user turn is new.
    budget = min(prompt_tokens, window) - estimate_tokens(user_text("")) - MESSAGE_OVERHEAD_TOKENS
    chosen = page_groups(hits, pages or {})[:max_sources]
    while True:
        given = _select_sources(question, chosen, budget, vision, pages or {}, meaning)
        many = len({g[0].manual for g, _ in given}) > 1
        given = _with_list_counts(question, given, many)
        blocks = [render_source(n, g[0], body, many) for n, (g, body) in enumerate(given, start=1)]
        text = user_text("\n\n".join(blocks))
        tokens = estimate_tokens(text) + MESSAGE_OVERHEAD_TOKENS
        # Each source keeps at least its best line, so many sources can overrun a small
        # window: then the lowest-ranked goes.
        if tokens <= window or len(chosen) == 1:
            break
        chosen.pop()
    truncated = len(given) < len(hits) or any(ELLIPSIS.strip() in body for _, body in given)
    messages: list[Message] = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": text},
    ]
    many = len({g[0].manual for g, _ in given}) > 1
    return Prompt(
        messages=messages,
        sources=[g[0] for g, _ in given],
        truncated=truncated,
        tokens=tokens,
        evidence=[f"{source_title(n, g[0], many)}\n{body}" for n, (g, body) in enumerate(given, start=1)],
        page_texts=[neutralise((pages or {}).get((g[0].manual, g[0].page), "")) for g, _ in given],
        next_page=[_next_page(g, pages or {}) for g, _ in given],
    )


Group = list[Hit]  # hits of one page, best first: the first one is the source's face


def page_groups(hits: Sequence[Hit], pages: PageTexts) -> list[Group]:
    """Hits grouped by page where the page's text is known (else each hit alone), in rank order."""
    groups: dict[tuple[str, int] | str, Group] = {}
    for hit in hits:
        whole = (hit.manual, hit.page) in pages and not hit.id.startswith(CATALOG_PREFIX)
        key: tuple[str, int] | str = (hit.manual, hit.page) if whole else hit.id
        groups.setdefault(key, []).append(hit)
    return list(groups.values())


def _group_split(n: int, group: Group, pages: PageTexts, many: bool) -> evidence.SourceText:
    face = group[0]
    title = source_title(n, face, many)
    page = pages.get((face.manual, face.page))
    if page is None:
        return evidence.split_units(neutralise(source_body(face)), face.kind, estimate_tokens, MAX_UNIT_TOKENS, title)
    anchors = [neutralise(source_body(h)) for h in group if h.kind != "page"]
    body = "\n\n".join([neutralise(page), *_runs_on(group, page)])
    heading = labels_heading(face.figure, face.page) if face.kind == "figure" else ""
    return evidence.split_units(body, "page", estimate_tokens, MAX_UNIT_TOKENS, title, anchors, heading)


def _with_list_counts(question: str, given: list[tuple[Group, str]], many: bool) -> list[tuple[Group, str]]:
    """For a "how many" question, each whole list shown under a lead-in on its subject gets
    a line saying how many items it has. The 1.5B model miscounts even numbered items (six
    for a list that runs to "7."), and the count is the manual's own structure, as the
    catalog's count of figures is. The grounding check reads the same lists."""
    things = counted(question)
    if not things:
        return given
    shown = [f"{source_title(n, g[0], many)}\n{body}" for n, (g, body) in enumerate(given, start=1)]
    notes: dict[int, list[str]] = {}
    for n, _, note in counted_lists(shown, question, things):
        notes.setdefault(n, []).append(f"({note})")
    return [(g, "\n".join([body, *notes.get(n, [])])) for n, (g, body) in enumerate(given)]


def _runs_on(group: Group, page: str) -> list[str]:
    """The group's passages that run on to the next page: they end beyond this page's
    text, and their rest comes too. Not a figure's: its record words its labels otherwise
    than the page does ("Labels read from the diagram:"), and they would come again."""
    flat = " ".join(neutralise(page).split())
    passages = [neutralise(source_body(h)) for h in group if h.kind not in ("page", "figure")]
    return [a for a in passages if " ".join(a.split())[-80:] not in flat]


def _next_page(group: Group, pages: PageTexts) -> str:
    """The text of the page after the group's, when a passage of the group runs on to it."""
    face = group[0]
    page = pages.get((face.manual, face.page))
    if page is None or face.id.startswith(CATALOG_PREFIX) or not _runs_on(group, page):
        return ""
    return neutralise(pages.get((face.manual, face.page + 1), ""))


def _select_sources(
    question: str,
    groups: Sequence[Group],
    budget: int,
    vision: bool,
    pages: PageTexts,
    meaning: evidence.Meaning | None = None,
) -> list[tuple[Group, str]]:
    """The pages worth giving the model, each with its evidence (rag/evidence.py), numbered
    in rank order. Pages that hardly match the question are left out, and the budget their
    titles took is handed to the rest in a second pass."""
    chosen = list(groups)
    given: list[tuple[Group, str]] = []
    for _ in range(2):
        many = len({g[0].manual for g in chosen}) > 1
        frames = sum(estimate_tokens(render_source(n, g[0], "", many)) + 1 for n, g in enumerate(chosen, start=1))
        splits = [_group_split(n, g, pages, many) for n, g in enumerate(chosen, start=1)]
        seen = [vision and any(h.kind == "figure" and bool(h.image) for h in g) for g in chosen]
        bodies = evidence.select(question, splits, budget - frames, keep=seen, meaning=meaning)
        given = [(g, body) for g, body in zip(chosen, bodies) if body is not None]
        if len(given) == len(chosen):
            break
        chosen = [g for g, _ in given]
    return given


def attach_images(prompt: Prompt, images: Sequence[tuple[int, str, bytes]]) -> None:
    """Add figure images (source number, path, PNG bytes) to the user message as image parts."""
    if not images:
        return
    user = prompt.messages[-1]
    parts: list[dict[str, Any]] = [{"type": "text", "text": user["content"]}]
    for n, path, png in images:
        hit = prompt.sources[n - 1]
        parts.append(
            {"type": "text", "text": f"Image of source [{n}] ({hit.figure or 'figure'}, page {hit.page}):"}
        )
        url = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        parts.append({"type": "image_url", "image_url": {"url": url}})
        prompt.images.append(path)
    user["content"] = parts


def rewrite_messages(earlier: Sequence[str], question: str) -> list[Message]:
    """Messages asking for a standalone search query.

    The system message is the answer prompt's own, on purpose: llama.cpp keeps one
    cached prefix, and a different system message here would evict it before the answer.
    """
    shown = "\n".join(f"- {' '.join(neutralise(e).split())[:300]}" for e in earlier[-3:])
    text = _REWRITE.substitute(
        earlier=shown, question=" ".join(neutralise(question).split())[:MAX_QUESTION_CHARS]
    )
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": text.strip()}]
