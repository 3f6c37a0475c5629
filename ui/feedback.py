"""Thumbs up/down with a comment, stored with the role of whoever gave it.

A thumbs down puts the answer in the staff review queue (the latest rating decides,
so a reviewer's thumbs up after fixing the cause takes it out again).
"""

from __future__ import annotations

import streamlit as st

from manualrag.conversations import Turn
from ui import auth
from ui.safe import literal
from ui.services import Ctx

MAX_COMMENT = 2000


def feedback_history(turn: Turn) -> None:
    for f in turn.feedback:
        thumb = "👍" if f.rating > 0 else "👎"
        comment = f": {f.comment}" if f.comment else ""
        st.caption(f"{thumb} {literal(f'{f.role}, {f.created_at}{comment}', 300)}")


def feedback_form(ctx: Ctx, turn: Turn, where: str) -> None:
    feedback_history(turn)
    st.feedback("thumbs", key=f"{where}-rate-{turn.id}")
    st.text_input(
        "Comment (optional)",
        key=f"{where}-comment-{turn.id}",
        max_chars=MAX_COMMENT,
        placeholder="What was wrong or missing?",
    )
    st.button("Save feedback", key=f"{where}-save-{turn.id}", on_click=_save, args=(ctx, turn.id, where))


def _save(ctx: Ctx, turn_id: int, where: str) -> None:
    rating = st.session_state.get(f"{where}-rate-{turn_id}")
    if rating is None:
        auth.notify("warning", "Pick 👍 or 👎 first.")
        return
    comment = str(st.session_state.get(f"{where}-comment-{turn_id}") or "")[:MAX_COMMENT]
    # The role is decided here, on the server, when the feedback is saved.
    role = auth.role(ctx.settings.ui)
    thumbs_up = rating == 1  # st.feedback("thumbs"): 0 is 👎, 1 is 👍
    ctx.svc.conversations.add_feedback(turn_id, 1 if thumbs_up else -1, comment, role)
    st.session_state[f"{where}-comment-{turn_id}"] = ""
    auth.notify(
        "success", "Feedback saved." if thumbs_up else "Feedback saved: the answer is in the review queue."
    )
