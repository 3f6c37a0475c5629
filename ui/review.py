"""Staff: review answers. The queue of flagged answers, and for any answer its whole trace:
the query retrieval used, the ranked hits with scores, the exact prompt, every cited
diagram at full size with the text read inside it, and the feedback so far.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import streamlit as st

from manualrag.conversations import Turn
from ui import auth
from ui.chat import OUTCOME_LABELS, cited_figures
from ui.feedback import feedback_form
from ui.render import figure_label
from ui.safe import inside, literal, one_line, safe_markdown
from ui.services import Ctx

TURN_KEY = "review_turn"
MODE_KEY = "review_mode"
FLAGGED, ALL = "Flagged", "All answers"


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC") if epoch else ""


def review_view(ctx: Ctx) -> None:
    st.header("Review answers")
    if not auth.allowed(ctx.settings.ui, "review answers", show=True):
        return
    store = ctx.svc.conversations
    flagged = store.flagged_count()
    if st.session_state.get(MODE_KEY) not in (FLAGGED, ALL):
        st.session_state[MODE_KEY] = FLAGGED
    mode = st.segmented_control(
        "Show",
        [FLAGGED, ALL],
        key=MODE_KEY,
        required=True,
        format_func=lambda m: f"{m} ({flagged})" if m == FLAGGED else m,
    )
    turns = store.answers(flagged_only=mode == FLAGGED)
    wanted = st.session_state.get(TURN_KEY)
    if wanted is not None and wanted not in {t.id for t in turns}:
        chosen = store.turn(wanted)  # opened from the chat: show it even when not flagged
        if chosen is not None:
            turns.insert(0, chosen)
    if not turns:
        st.info(
            "No flagged answers. A 👎 from anyone puts an answer here."
            if mode == FLAGGED
            else "No answers yet."
        )
        return
    by_id = {t.id: t for t in turns}
    if wanted not in by_id:
        st.session_state[TURN_KEY] = turns[0].id
    turn_id = st.selectbox(
        "Answer",
        list(by_id),
        key=TURN_KEY,
        format_func=lambda i: (
            f"#{i} · {_when(by_id[i].asked_at)} · {'👎 ' if by_id[i].verdict < 0 else ''}"
            f"{one_line(by_id[i].question, 90)}"
        ),
    )
    _detail(ctx, by_id[turn_id])


def _detail(ctx: Ctx, turn: Turn) -> None:
    answer = turn.answer
    st.subheader(literal(answer.question, 300))
    if answer.text:
        st.markdown(safe_markdown(answer.text))
    if answer.error:
        st.error(literal(answer.error, 400))
    cols = st.columns(4)
    cols[0].metric("Retrieval", f"{answer.retrieval_s:.2f} s")
    cols[1].metric(
        "First token", f"{answer.first_token_s:.2f} s" if answer.first_token_s is not None else "—"
    )
    cols[2].metric("Answer", f"{answer.total_s:.1f} s")
    cols[3].metric("Model", answer.model or "—")

    st.markdown("##### Feedback")
    feedback_form(ctx, turn, "review")

    st.markdown("##### Retrieval trace")
    st.caption(
        "Query used for retrieval"
        + (" (rewritten from the conversation)" if turn.query and turn.query != answer.question else "")
    )
    st.code(turn.query or answer.question, language=None, wrap_lines=True)
    if turn.manuals:
        st.caption(literal("Scope: " + ", ".join(turn.manuals)))
    if answer.hits:
        # Older answers kept no source ids: their sources were the first hits.
        ids = answer.source_ids or [h.id for h in answer.hits[: answer.sources]]
        st.dataframe(
            [
                {
                    "Rank": n,
                    "Source": f"[{ids.index(h.id) + 1}]" if h.id in ids else "",
                    "Cited": "✓" if any(c.hit_id == h.id for c in answer.citations) else "",
                    "Kind": h.kind,
                    "Manual": h.manual,
                    "Page": h.page,
                    "Figure": h.figure,
                    "Score": round(h.score, 5),
                    "Text": one_line(h.text, 300),
                }
                for n, h in enumerate(answer.hits, 1)
            ],
            hide_index=True,
            width="stretch",
        )
    else:
        st.caption("Retrieval found nothing good enough: the model was not asked.")
    if answer.truncated:
        st.caption("Sources were cut to the lines that match the question, to fit the prompt budget.")
    st.caption(f"Outcome: **{OUTCOME_LABELS[answer.outcome]}**")
    if answer.not_covered:
        st.info("The model was not asked: the question names what the manuals searched don't have: "
                + literal(", ".join(answer.not_covered)))
    if answer.unsupported:
        st.warning(
            "The model's draft was withheld: it states what no source it was shown contains: "
            + literal(", ".join(answer.unsupported))
        )
    if answer.restated:
        st.warning("The model's draft was withheld: it does not answer the question (it only restates it, "
                   "gives a \"how many\" question no number or a measurement question no value, or cites "
                   "only pages other than those the question names).")
    for draft in answer.withheld_drafts:
        st.caption("An earlier draft, withheld (it stated what the lines shown lacked); the model was then "
                   "asked again from more of the pages, with the prompt below:")
        st.code(draft, language=None, wrap_lines=True)

    with st.expander(f"Exact prompt ({len(answer.messages)} messages)"):
        for message in answer.messages:
            st.caption(str(message.get("role", "?")))
            content = message.get("content", "")
            st.code(
                content if isinstance(content, str) else json.dumps(content, indent=1, ensure_ascii=False),
                language=None,
                wrap_lines=True,
            )
        if answer.raw_text and answer.raw_text != answer.text:
            st.caption("What the model wrote, before citation checking")
            st.code(answer.raw_text, language=None, wrap_lines=True)

    figures = cited_figures(answer)
    st.markdown(f"##### Cited diagrams ({len(figures)})")
    root = ctx.svc.engine.store.root
    for ref in figures:
        st.markdown(f"**{literal(f'[{ref.key}] {ref.manual} · {figure_label(ref.figure, ref.page)}')}**")
        path = inside(root, ref.image)
        if path is None:
            st.warning("This figure is no longer stored (its manual was removed or ingested again).")
        else:
            # Full size and lossless: crops and resolution are what is reviewed.
            st.image(str(path), width="content", output_format="PNG")
        st.text(ref.text or "(no text read inside the figure)")
