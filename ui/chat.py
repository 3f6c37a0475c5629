"""The technician's page: a conversation with streamed, cited answers and their figures.

Each question becomes an ``AnswerJob`` (ui/jobs.py); this page draws the saved
turns, then follows the running job token by token. The job saves its own turn,
so a click during streaming (which restarts this script) loses nothing: the next
run picks the stream up where it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from manualrag.conversations import Turn
from manualrag.errors import QuestionTooLong
from manualrag.types import Answer, BBox, Hit
from rag.answer import Evidence
from rag.embedders import accepts_images
from ui import auth
from ui.feedback import feedback_form
from ui.jobs import AnswerJob
from ui.owner import owner_token
from ui.photo import PHOTO_TYPES, photo_panel, photo_search, split_submission
from ui.photo import RESULT as PHOTO_RESULT
from ui.render import figure_label, thumbnail
from ui.safe import inside, literal, safe_markdown
from ui.services import Ctx, Services
from ui.viewer import View, current_view, open_view, viewer_panel

CONVERSATION = "conversation_id"
PENDING = "pending_answer"
HISTORY_TURNS = 6  # earlier answers passed to the engine for follow-ups
THUMBS_PER_ROW = 3
CURSOR = " ▌"


@dataclass(frozen=True)
class FigureRef:
    key: int  # the [n] it was cited as
    manual: str
    page: int
    figure: str
    image: str
    bbox: BBox | None
    text: str


def cited_figures(answer: Answer) -> list[FigureRef]:
    """Figures the answer cites, directly or through a cited passage that names one."""
    refs: list[FigureRef] = []
    seen: set[tuple[str, str]] = set()
    by_id = {h.id: h for h in answer.hits}
    for c in answer.citations:
        hit = by_id.get(c.hit_id)
        if not c.image:
            # A cited passage naming a figure: show it when retrieval brought it along.
            hit = next(
                (
                    h
                    for h in answer.hits
                    if h.kind == "figure"
                    and h.image
                    and h.manual == c.manual
                    and c.figure
                    and h.figure == c.figure
                ),
                None,
            )
            if hit is None:
                continue
        image = c.image or (hit.image if hit else "")
        ident = (c.manual, image)
        if ident in seen:
            continue
        seen.add(ident)
        refs.append(
            FigureRef(
                key=c.key,
                manual=c.manual,
                page=hit.page if hit else c.page,
                figure=(hit.figure if hit else c.figure),
                image=image,
                bbox=hit.bbox if hit else c.bbox,
                text=hit.text if hit else "",
            )
        )
    return refs


def copy_text(answer: Answer) -> str:
    """The answer with its sources, as plain text for the clipboard."""
    lines = [answer.text or answer.error]
    if answer.citations:
        lines += ["", "Sources:"]
        for c in sorted({c.key: c for c in answer.citations}.values(), key=lambda c: c.key):
            what = f", {c.figure}" if c.figure else ""
            lines.append(f"[{c.key}] {c.manual}, p.{c.page}{what}")
    return "\n".join(lines)


# -- conversation state ---------------------------------------------------------------------------


def current_conversation(svc: Services) -> str | None:
    """The open conversation: only ever one this browser owns."""
    cid = st.session_state.get(CONVERSATION)
    from_url = cid is None and bool(st.query_params.get("c"))
    if from_url:
        cid = st.query_params["c"]  # a reload keeps the conversation: its id is in the URL
    if cid is not None and svc.conversations.owned(cid, owner_token()) is None:
        # Someone else's id (a shared link, a guess) and an unknown one get the same answer,
        # so an id reveals nothing; asked again on every run, not only when the URL is read.
        if from_url:
            st.warning("Conversation not found. Conversations open only in the browser that started them.")
        st.query_params.pop("c", None)
        cid = None
    st.session_state[CONVERSATION] = cid
    return cid


def new_conversation() -> None:
    st.session_state[CONVERSATION] = None
    st.session_state.pop(PHOTO_RESULT, None)
    st.query_params.pop("c", None)
    st.session_state.pop("source_view", None)


def open_conversation(cid: str) -> None:
    st.session_state[CONVERSATION] = cid
    st.query_params["c"] = cid
    st.session_state.pop("source_view", None)


# -- the page -------------------------------------------------------------------------------------


def chat_view(ctx: Ctx, scope: list[str]) -> None:
    svc = ctx.svc
    manuals = svc.engine.manuals()
    job: AnswerJob | None = st.session_state.get(PENDING)
    if job is not None and job.done and job.turn_id is not None:
        st.session_state.pop(PENDING)  # finished while the page was away: it is in the history now
        job = None
    cid = current_conversation(svc)
    turns = svc.conversations.turns(cid) if cid else []

    photos = accepts_images(ctx.settings.embed.model)  # search by photo needs a pixel embedder
    submitted = st.chat_input(
        ("Ask about your manuals, or attach a photo of a part…" if photos else "Ask about your manuals…")
        if manuals else "Add a PDF manual first (sidebar)",
        key="question",
        disabled=not manuals,
        submit_mode="disable",
        accept_file=photos,
        file_type=PHOTO_TYPES if photos else None,
    )
    question, photo = split_submission(submitted)
    if photo is not None:
        st.session_state[PHOTO_RESULT] = photo_search(svc.engine, photo.name, photo.getvalue(), scope)
    limit = ctx.settings.retrieval.max_question_chars
    if len(question or "") > limit:
        # Said, not silently cut: the box's own max_chars would drop the end of a pasted question.
        st.error(literal(str(QuestionTooLong(len(question or ""), limit))))
    elif question and question.strip():
        if job is not None and not job.done:
            auth.notify("info", "Still answering the previous question: ask again when it is done.")
        else:
            if cid is None:
                cid = svc.conversations.create(question, owner=owner_token())
                open_conversation(cid)
            history = [t.answer for t in turns if not t.answer.error][-HISTORY_TURNS:]
            job = AnswerJob(svc.engine, svc.conversations, cid, question.strip(), scope, history)
            st.session_state[PENDING] = job

    # An answer still being written for another conversation finishes (and is saved) on
    # its own; this page follows only its own conversation's.
    following = job if job is not None and job.conversation_id == cid else None

    view = current_view()
    if view is not None:
        left, right = st.columns([3, 2], gap="medium")
        with right:  # drawn first, so it is there while the answer streams on the left
            viewer_panel(svc, ctx.settings.ui.page_dpi)
    else:
        left = st.container()
    with left:
        if not turns and following is None and PHOTO_RESULT not in st.session_state:
            _empty_state(svc, manuals, scope)
        for turn in turns:
            _turn(ctx, turn)
        if (found := st.session_state.get(PHOTO_RESULT)) is not None:
            photo_panel(ctx, found)
        if following is not None:
            _follow(ctx, following)


def _empty_state(svc: Services, manuals: list, scope: list[str]) -> None:
    if not manuals:
        st.info(
            "No manuals yet. Add PDF manuals with **Add manuals** in the sidebar; "
            "you can ask about them as soon as they are in."
        )
        return
    where = ", ".join(scope) if scope else f"all {len(manuals)} manual{'s' if len(manuals) != 1 else ''}"
    st.markdown("#### Ask a question about your manuals")
    st.caption(literal(f"Searching {where}. Answers cite their sources; figures show under the answer."))
    warm = svc.warmup
    if not warm.llm_ready and not warm.llm_error:
        st.caption(f":material/hourglass_top: Still {warm.stage} The first answer may take longer.")


def _turn(ctx: Ctx, turn: Turn) -> None:
    with st.chat_message("user"):
        st.markdown(safe_markdown(turn.question))
    with st.chat_message("assistant"):
        render_answer(ctx, turn)


def _follow(ctx: Ctx, job: AnswerJob) -> None:
    """Draw the running answer as it streams; when it is saved, draw it like any turn."""
    with st.chat_message("user"):
        st.markdown(safe_markdown(job.question))
    with st.chat_message("assistant"):
        card = st.empty()
        slot = st.empty()
        seen = -1
        carded = False
        while not job.done:
            # Redrawn at least twice a second even without news: each draw is also the
            # point where Streamlit can stop this run for a click elsewhere on the page.
            seen = job.wait(seen, timeout=0.5)
            if job.evidence is not None and not carded:
                # Retrieval's best evidence, on screen while the model reads its sources.
                with card.container():
                    _evidence_card(ctx, job.evidence)
                carded = True
            if job.text:
                slot.markdown(safe_markdown(job.text) + CURSOR)
            else:
                slot.markdown(f":material/hourglass_top: *{literal(job.status)}*")
        slot.empty()
        card.empty()
        turn = ctx.svc.conversations.turn(job.turn_id) if job.turn_id is not None else None
        st.session_state.pop(PENDING, None)
        if turn is None:
            st.error("The answer could not be saved; see the server log.")
            return
        render_answer(ctx, turn)


def _evidence_card(ctx: Ctx, evidence: Evidence) -> None:
    """The best hit as a card: where it is, its best lines, and the figure when it is one."""
    best = evidence.best
    if best is None:
        return
    with st.container(border=True, key="evidence-card"):
        where = f"{best.manual} p.{best.page}" + (f" · {best.figure}" if best.figure else "")
        st.caption(f":material/manage_search: Best evidence · {literal(where, 120)}")
        path = inside(ctx.svc.engine.store.root, best.image) if best.image else None
        if path is not None:
            st.image(thumbnail(path, ctx.settings.ui.thumb_px), width="content", output_format="PNG")
        lines = [" ".join(line.split()) for line in evidence.quote().splitlines() if line.strip()]
        if lines:
            st.markdown("> " + safe_markdown(" · ".join(lines)))  # table rows and labels stay apart


# -- one answer -------------------------------------------------------------------------------------


# How each outcome of a question reads, in the chat and the review desk alike.
OUTCOME_LABELS = {
    "answered": "answered from the manuals",
    "not_in_manuals": "not in the manuals",
    "withheld": "withheld: the draft stated what no source says",
    "llm_error": "the answer model failed",
}


def render_answer(ctx: Ctx, turn: Turn) -> None:
    answer = turn.answer
    if answer.text:
        st.markdown(safe_markdown(answer.text))
    if answer.error:
        st.error(literal(answer.error, 400), icon=":material/error:")
    if answer.outcome == "withheld":
        st.caption(f":material/gpp_maybe: {OUTCOME_LABELS['withheld']}: "
                   f"{literal(', '.join(answer.unsupported) or 'it did not answer the question', 200)}")
    elif answer.not_covered:
        st.caption(f":material/search_off: not in the manuals searched: {literal(', '.join(answer.not_covered), 200)}")
    _figures(ctx, turn)
    _sources(turn)
    _footer(ctx, turn)


def _figures(ctx: Ctx, turn: Turn) -> None:
    refs = cited_figures(turn.answer)
    root = ctx.svc.engine.store.root
    thumb_px = ctx.settings.ui.thumb_px
    for start in range(0, len(refs), THUMBS_PER_ROW):
        cols = st.columns(THUMBS_PER_ROW)
        for col, ref in zip(cols, refs[start : start + THUMBS_PER_ROW], strict=False):
            path = inside(root, ref.image)
            with col:
                if path is None:
                    st.caption(literal(f"[{ref.key}] {figure_label(ref.figure, ref.page)}: no longer stored"))
                    continue
                st.image(thumbnail(path, thumb_px), width="content", output_format="PNG")
                label = f"[{ref.key}] {figure_label(ref.figure, ref.page)}"
                st.button(
                    literal(label),
                    key=f"t{turn.id}-fig{ref.key}-{start}",
                    icon=":material/zoom_in:",
                    type="tertiary",
                    help="Open large",
                    on_click=open_view,
                    args=(
                        View(
                            kind="figure",
                            manual=ref.manual,
                            page=ref.page,
                            cited_page=ref.page,
                            bbox=ref.bbox,
                            label=label,
                            figure=ref.figure,
                            image=ref.image,
                            text=ref.text,
                        ),
                    ),
                )


def _sources(turn: Turn) -> None:
    answer = turn.answer
    cited = sorted({c.key: c for c in answer.citations}.values(), key=lambda c: c.key)
    if cited:
        items = [(f"[{c.key}]", c.manual, c.page, c.figure, c.bbox) for c in cited]
        title = "Sources"
    elif answer.hits and (answer.error or not answer.answerable):
        # No cited answer: still show where the best matches are, so the manual can be read.
        # A figure and a passage naming it share a label: one button per place.
        best: dict[tuple[str, int, str], Hit] = {}
        for hit in answer.hits:
            best.setdefault((hit.manual, hit.page, hit.figure), hit)
        items = [(f"#{n}", h.manual, h.page, h.figure, h.bbox) for n, h in enumerate(list(best.values())[:3], 1)]
        title = "Closest passages"
    else:
        return
    box = st.container(horizontal=True, gap="small", vertical_alignment="center")
    box.caption(f"{title}:", width="content")
    for n, (key, manual, page, figure, bbox) in enumerate(items):
        label = f"{key} {manual} p.{page}" + (f" · {figure}" if figure else "")
        box.button(
            literal(label, 90),
            key=f"t{turn.id}-src{n}",
            icon=":material/description:",
            type="tertiary",
            help="Show the page with this source outlined",
            on_click=open_view,
            args=(
                View(
                    kind="page",
                    manual=manual,
                    page=page,
                    cited_page=page,
                    bbox=bbox,
                    label=label,
                    figure=figure,
                ),
            ),
        )


def _footer(ctx: Ctx, turn: Turn) -> None:
    answer = turn.answer
    staff = ctx.staff
    timing = []
    if answer.first_token_s is not None:
        timing.append(f"first words after {answer.first_token_s + answer.retrieval_s:.1f} s")
    if answer.total_s:
        timing.append(f"answered in {answer.retrieval_s + answer.load_s + answer.total_s:.1f} s")
    if timing:
        st.caption(" · ".join(timing))
    row = st.columns([1, 1, 1] if staff else [1, 1], gap="small")
    with row[0], st.expander("Copy answer with sources", icon=":material/content_copy:"):
        st.code(copy_text(answer), language=None, wrap_lines=True)
    with row[1], st.expander("Rate this answer", icon=":material/thumbs_up_down:"):
        feedback_form(ctx, turn, "chat")
    if staff:
        row[2].button(
            "Review this answer",
            key=f"t{turn.id}-review",
            icon=":material/fact_check:",
            on_click=_to_review,
            args=(turn.id,),
        )


def _to_review(turn_id: int) -> None:
    st.session_state["view"] = "Review"
    st.session_state["review_turn"] = turn_id
