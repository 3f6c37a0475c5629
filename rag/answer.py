"""The answer stage: ranked hits in, a streamed, cited, reviewable answer out.

``Answerer.ask`` yields ``Status`` (model loading), ``Token`` (text as the model
writes it, citations not yet checked) and finally one ``Answer``, whose ``text``
replaces the streamed tokens: only offered [n] keys are left in it. LLM failures
never raise out of ``ask``: the final Answer carries ``error`` and still the hits,
so the user sees the sources even when the model is down.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import io
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from manualrag.errors import LlmUnavailable
from manualrag.settings import LlmSettings
from manualrag.types import Answer, Citation, Hit
from rag.evidence import Meaning
from rag.citations import (
    cite_by_overlap,
    cites_near,
    cite_next_page,
    extract_citations,
    is_answerable,
    repoint_citations,
)
from rag.grounding import PAGES_ASKED, check_draft, series_count
from rag.llm import ChatModel, Message
from rag.local_llm import StatusCallback
from rag.prompts import (
    CANNOT_ANSWER,
    SYSTEM_PROMPT,
    PageTexts,
    Prompt,
    attach_images,
    build_prompt,
    rewrite_messages,
)


# The evidence card's quote: a sentence or two, a table row, a few labels.
QUOTE_TOKENS = 60
# The card looks this far down the hits for one that states something (``Evidence.best``).
CARD_CANDIDATES = 3
# Written after the question when the first draft named nothing (see ``Answerer.ask``).
NAME_IT = "Name it as the source does."


@dataclass(frozen=True, slots=True)
class Token:
    text: str


@dataclass(frozen=True, slots=True)
class Status:
    text: str  # "loading the local model…": show it while the call blocks
    restart: bool = False  # the tokens streamed so far were a withheld draft: clear them, a new one follows


@dataclass(frozen=True)
class Evidence:
    """What retrieval found, before the model says anything: shown at once (the app's
    evidence card, the first lines of `manualrag ask`), while the model reads."""

    hits: list[Hit]
    question: str

    @property
    def best(self) -> Hit | None:
        """The first hit that states something. A training manual's page of review questions
        echoes the question word for word and can rank first, yet answers nothing: the card
        then shows the next hit (of the first few) whose lines say something."""
        return self._card[0]

    def quote(self) -> str:
        """The best hit's lines that match the question best, in its own words."""
        return self._card[1]

    @functools.cached_property
    def _card(self) -> tuple[Hit | None, str]:
        """The best hit and its quote, chosen once however often the card is drawn."""
        fallback: tuple[Hit | None, str] = (None, "")
        for hit in self.hits[:CARD_CANDIDATES]:
            quote, states = self._quote_of(hit)
            if states:
                return hit, quote
            fallback = fallback if fallback[0] is not None else (hit, quote)
        return fallback

    def _quote_of(self, hit: Hit) -> tuple[str, bool]:
        """`hit`'s lines that match the question best, and whether they state anything."""
        from rag import evidence
        from rag.prompts import estimate_tokens, neutralise, source_body

        split = evidence.split_units(neutralise(source_body(hit)), hit.kind, estimate_tokens, QUOTE_TOKENS)
        body = evidence.select(self.question, [split], QUOTE_TOKENS)[0] or ""
        shown = [u for u in split.units if u.keep]
        if shown and all(u.silent for u in shown):
            # Printed questions and their choices state nothing; the question that echoes the
            # user's says why the page ranked, where its numbers and choices say nothing.
            return evidence.echoed_question(split, self.question) or body, False
        return body, True


AnswerEvent = Evidence | Token | Status | Answer


@dataclass(slots=True)
class Followed:
    answer: Answer
    evidence_s: float | None  # seconds from following the stream to its Evidence event


def follow(
    events: Iterable[AnswerEvent], on_event: Callable[[AnswerEvent], None] | None = None, question: str = ""
) -> Followed:
    """Drive an answer stream to its end, handing each event to `on_event`.

    The one loop behind `manualrag ask`, the app's answer thread and `eval --answers`:
    each shows the events its own way, and all need the final Answer and when the
    evidence arrived. A stream that ends without an Answer is a bug upstream; it
    becomes an Answer with an error rather than a silent None."""
    started = time.perf_counter()
    evidence_s: float | None = None
    final: Answer | None = None
    for event in events:
        if isinstance(event, Evidence) and evidence_s is None:
            evidence_s = time.perf_counter() - started
        elif isinstance(event, Answer):
            final = event
        if on_event is not None:
            on_event(event)
    if final is None:
        final = Answer(question=question, text="", answerable=False, error="the answer stream ended early")
    return Followed(final, evidence_s)


def _noop(message: str) -> None:
    pass


class Answerer:
    def __init__(self, chat: ChatModel, settings: LlmSettings) -> None:
        self.chat = chat
        self.settings = settings

    def ask(
        self,
        question: str,
        hits: Sequence[Hit],
        history: Sequence[Answer] = (),
        pages: PageTexts | None = None,
        not_covered: Sequence[str] = (),
        meaning: Meaning | None = None,
        named: Sequence[tuple[str, int]] = (),
    ) -> Iterator[AnswerEvent]:
        """Stream the answer to `question` from `hits` (ranked, best first) and the text of
        their pages (`pages`, see ``build_prompt``). `not_covered`: codes, names, figures and pages
        the question names that the manuals searched don't have (``Retriever.not_covered``).
        `meaning`: cosines of texts to the question, to choose evidence by meaning as well
        as by words. `named`: the (manual, page) the question names ("on the cover", "on page
        12"), which an answer must cite."""
        if not hits:
            # Retrieval found nothing above its floor: no source could support an
            # answer, so the model is not asked (and not loaded).
            yield Answer(question=question, text=CANNOT_ANSWER, answerable=False, model=self.chat.model)
            return
        if not_covered and self.settings.strictness == "strict":
            # A small model shown KS01's row answers a question about KS07 with KS01's name:
            # whatever it says of a code, name or page the manuals lack comes from elsewhere, and
            # every draft would be withheld. So it is not asked, and the answer comes at once.
            yield Answer(question=question, text=CANNOT_ANSWER, answerable=False, hits=list(hits),
                         model=self.chat.model, not_covered=list(not_covered))
            return

        s = self.settings
        began = time.perf_counter()  # the first token's wait includes choosing the evidence

        def prompt_for(budget: int, nudge: str = "") -> Prompt:
            prompt = build_prompt(
                question,
                hits,
                context_tokens=s.context_tokens,
                max_tokens=s.max_tokens,
                prompt_tokens=budget,
                max_sources=s.max_sources,
                earlier=[a.question for a in history if a.question],
                vision=s.vision,
                pages=pages,
                meaning=meaning,
                nudge=nudge,
            )
            if s.vision:
                attach_images(prompt, self._figure_images(prompt))
            return prompt

        prompt = prompt_for(s.budget)
        answer = Answer(
            question=question,
            text="",
            hits=list(hits),
            sources=len(prompt.sources),
            source_ids=[h.id for h in prompt.sources],
            model=self.chat.model,
            messages=trace_messages(prompt.messages),
            truncated=prompt.truncated,
        )

        if self.chat.needs_start:
            yield Status("loading the local model (first question only)…")
            try:
                answer.load_s = self.prepare()
            except LlmUnavailable as err:
                answer.error = str(err)
                answer.answerable = False
                yield answer
                return
            yield Status(f"local model ready in {answer.load_s:.1f} s")
            began += answer.load_s  # reported apart

        yield from self._draft(answer, prompt, began, named)
        if answer.outcome == "withheld" and s.retry_budget > s.budget:
            # The small model invents when the line it needs was cut from the prompt; the
            # same pages at a bigger budget often hold it (docs/measurements.md). The second
            # draft passes the same checks, so an unanswerable question stays unanswered.
            # A draft that named nothing (it restated the question) is asked again to name
            # what the source calls it: the 1.5B model then gives the part number it had left out.
            nudge = NAME_IT if answer.restated and not answer.unsupported else ""
            answer.withheld_drafts.append(answer.raw_text.strip())
            why = "the draft named nothing" if nudge else "the draft stated what the lines shown don't"
            yield Status(f"{why}: reading more of the pages…", restart=True)
            answer.unsupported, answer.restated = [], False
            yield from self._draft(answer, prompt_for(s.retry_budget, nudge), began, named)
        answer.total_s = time.perf_counter() - began
        yield answer

    def _draft(self, answer: Answer, prompt: Prompt, began: float,
               named: Sequence[tuple[str, int]] = ()) -> Iterator[AnswerEvent]:
        """Stream one draft from `prompt` and check it into `answer` (text, citations, verdict)."""
        answer.sources, answer.source_ids = len(prompt.sources), [h.id for h in prompt.sources]
        answer.messages, answer.truncated = trace_messages(prompt.messages), prompt.truncated
        pieces: list[str] = []
        try:
            for piece in self.chat.stream(prompt.messages):
                if answer.first_token_s is None:
                    answer.first_token_s = time.perf_counter() - began
                pieces.append(piece)
                yield Token(piece)
        except LlmUnavailable as err:
            answer.error = str(err)
        answer.model = self.chat.model  # known only after the first call when MODEL was empty
        self._finish(answer, "".join(pieces), prompt, named)

    def prepare(self, on_status: StatusCallback = _noop) -> float:
        """Load the embedded model now (a UI may call this in the background); seconds spent.

        Also sends the fixed system prompt once, so its ~220 tokens sit in llama.cpp's
        prompt cache before the first question (seconds saved on 2 CPU cores).
        """
        if not self.chat.needs_start:
            return 0.0
        began = time.perf_counter()
        self.chat.start(on_status)
        try:
            self.chat.complete(
                [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "Ready?"}],
                max_tokens=1,
            )
        except LlmUnavailable:
            pass  # only a warm-up: the question itself will report a real failure
        return time.perf_counter() - began

    def answer(self, question: str, hits: Sequence[Hit], history: Sequence[Answer] = ()) -> Answer:
        """`ask` without the stream: the final Answer."""
        final = None
        for event in self.ask(question, hits, history):
            if isinstance(event, Answer):
                final = event
        assert final is not None  # ask always ends with an Answer
        return final

    def _finish(self, answer: Answer, raw: str, prompt: Prompt, named: Sequence[tuple[str, int]] = ()) -> None:
        answer.raw_text = raw
        answer.text, answer.citations = extract_citations(raw, prompt.sources)
        answer.answerable = is_answerable(answer.text, answer.citations)
        if answer.answerable and answer.citations:
            text, moved = repoint_citations(answer.text, prompt.evidence, answer.question)
            if moved:
                answer.text, cited = extract_citations(text, prompt.sources)
                answer.citations = [dataclasses.replace(c, inferred=c.key in moved) for c in cited]
        if answer.answerable and not answer.citations:
            answer.text, cited = extract_citations(
                cite_by_overlap(answer.text, prompt.evidence), prompt.sources
            )
            answer.citations = [dataclasses.replace(c, inferred=True) for c in cited]
        answer.citations = cite_next_page(answer.text, answer.citations, prompt.page_texts, prompt.next_page,
                                          answer.question)
        if answer.answerable:
            # A value no source states ("torque it to 10 Nm") is the small model's
            # invention, and a technician would act on it: the draft is withheld (it
            # stays in raw_text for the review desk) and the answer says so plainly.
            # A draft that only restates the question answers nothing, whatever it cites.
            # Checked against what the model was shown, not the whole of each source.
            strictness = self.settings.strictness
            verdict = check_draft(answer.text, prompt.evidence, answer.question, strictness)
            answer.unsupported, answer.restated = verdict.unsupported, verdict.restated
            # A question about a page ("the car on the cover") answered from other pages only
            # is about another picture or passage: the small model took what it was shown.
            if verdict.grounded and strictness == "strict" and named and not cites_near(answer.citations, named):
                answer.restated = True
            if answer.unsupported or answer.restated:
                answer.answerable = False
        if answer.answerable and PAGES_ASKED.search(answer.question):
            answer.text = name_pages(answer.text, answer.citations)
        if answer.answerable and (count := series_count(answer.text, answer.question, prompt.evidence)):
            # The items of a counted list named without their number: the manual's count
            # comes first, so the one asked "how many" reads it.
            answer.text = f"{count}:\n{answer.text}" if "\n" in answer.text else f"{count}: {answer.text}"
        if not answer.answerable and not answer.error:
            # One wording for "not in the manuals", whatever variant the model chose;
            # citations on it would point at sources that did not answer.
            answer.text, answer.citations = CANNOT_ANSWER, []

    def _figure_images(self, prompt: Prompt) -> list[tuple[int, str, bytes]]:
        """The best-ranked figures of the prompt as size-capped PNGs, for a vision model."""
        s = self.settings
        images: list[tuple[int, str, bytes]] = []
        for n, hit in enumerate(prompt.sources, start=1):
            if len(images) >= s.max_images:
                break
            if hit.image:
                png = load_png(Path(hit.image), s.image_max_side, s.image_max_bytes)
                if png is not None:
                    images.append((n, hit.image, png))
        return images


def load_png(path: Path, max_side: int, max_bytes: int) -> bytes | None:
    """The image as PNG, downscaled to `max_side`; None when unreadable or still too big."""
    from PIL import Image, UnidentifiedImageError

    try:
        data = path.read_bytes()
        with Image.open(io.BytesIO(data)) as img:
            if max(img.size) <= max_side and img.format == "PNG" and len(data) <= max_bytes:
                return data
            img.thumbnail((max_side, max_side))
            out = io.BytesIO()
            img.save(out, format="PNG", optimize=True)
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
        return None  # a missing or broken figure file must not cost the answer
    png = out.getvalue()
    return png if len(png) <= max_bytes else None


def name_pages(text: str, citations: Sequence[Citation]) -> str:
    """An answer to "which pages …?" names each page it cites: "[1] and [3]" becomes "page 3
    [1] and page 72 [3]". The model answers with the keys alone, which left the reader to
    find the pages under Sources."""
    many = len({c.manual for c in citations}) > 1
    where = {c.key: f"{c.manual} page {c.page}" if many else f"page {c.page}" for c in citations}

    def named(match: re.Match[str]) -> str:
        key = int(match[1])
        before = text[: match.start()].rstrip().lower()
        if key not in where or re.search(r"(?:page|p\.)\s*\d+$", before):
            return match[0]  # an unknown key, or a page the answer already names
        return f"{where[key]} {match[0]}"

    out = re.sub(r"\[(\d+)\]", named, text)
    return out[:1].upper() + out[1:]


def trace_messages(messages: Sequence[Message]) -> list[dict[str, object]]:
    """The messages as sent, with image data URLs shortened for the review trace."""
    shown = copy.deepcopy(list(messages))
    for message in shown:
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for part in content:
            url = part.get("image_url", {}).get("url", "") if isinstance(part, dict) else ""
            if url.startswith("data:"):
                part["image_url"]["url"] = f"<image: {len(url) * 3 // 4:,} bytes as a data URL>"
    return shown


# -- follow-up questions -------------------------------------------------------------------------

MAX_QUERY_CHARS = 300


def rewrite_query(history: Sequence[Answer], question: str, chat_model: ChatModel | None) -> str:
    """A standalone search query for a follow-up ("what about the tail lamp?").

    No history: the question as is, without a call. On any LLM failure or an unusable
    reply: the last question and this one joined, which keeps the topic words. The
    embedded model is not loaded for this (a silent wait before retrieval): while it
    is not running, the fallback is used, and `Answerer.ask` loads it with a status.
    """
    earlier = [a.question for a in history if a.question.strip()]
    if not earlier:
        return question
    fallback = f"{earlier[-1]} {question}"
    if chat_model is None or chat_model.needs_start:
        return fallback
    try:
        reply = chat_model.complete(rewrite_messages(earlier, question), max_tokens=48, temperature=0.0)
    except LlmUnavailable:
        return fallback
    return clean_query(reply) or fallback


def clean_query(reply: str) -> str:
    """The query line of a rewrite reply, or "" when the reply is not a usable query."""
    lines = [ln.strip() for ln in reply.strip().splitlines() if ln.strip()]
    if not lines:
        return ""
    query = lines[0]
    for prefix in ("search query:", "query:", "standalone query:", "rewritten query:"):
        if query.lower().startswith(prefix):
            query = query[len(prefix) :].strip()
    query = query.strip("\"'`* ")
    if not query or len(query) > MAX_QUERY_CHARS or CANNOT_ANSWER.lower()[:30] in query.lower():
        return ""
    return query
