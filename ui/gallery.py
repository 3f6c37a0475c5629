"""Staff: every figure of a manual with its caption and OCR text, to spot bad crops or OCR."""

from __future__ import annotations

import streamlit as st

from ui import auth
from ui.render import figure_label, thumbnail
from ui.safe import inside, literal
from ui.services import Ctx

PER_PAGE = 12
COLUMNS = 3
THUMB_PX = 480


def gallery_view(ctx: Ctx) -> None:
    st.header("Figures")
    if not auth.allowed(ctx.settings.ui, "browse the figure gallery", show=True):
        return
    engine = ctx.svc.engine
    manuals = engine.manuals()
    if not manuals:
        st.info("No manuals yet.")
        return
    names = [m.name for m in manuals]
    if st.session_state.get("gallery_manual") not in names:
        st.session_state["gallery_manual"] = names[0]
    top = st.columns([2, 2, 1])
    name = top[0].selectbox("Manual", names, key="gallery_manual")
    needle = top[1].text_input("Filter", key="gallery_filter", placeholder="label, caption or OCR text")
    info = next(m for m in manuals if m.name == name)
    figures = [r for r in engine.store.library.records_of(info.ingest_id) if r.kind == "figure"]
    if needle.strip():
        figures = [r for r in figures if needle.strip().lower() in f"{r.figure}\n{r.text}".lower()]
    if not figures:
        st.info("No figures found in this manual." if not needle.strip() else "No figure matches the filter.")
        return
    pages = (len(figures) + PER_PAGE - 1) // PER_PAGE
    page = top[2].number_input("Page", min_value=1, max_value=pages, value=1, key=f"gallery_page-{name}")
    st.caption(
        f"{len(figures)} figures ({info.figures_with_ocr} of {info.figures} with OCR text) "
        f"· page {page} of {pages}"
    )
    shown = figures[(page - 1) * PER_PAGE : page * PER_PAGE]
    root = engine.store.root
    for start in range(0, len(shown), COLUMNS):
        for col, record in zip(st.columns(COLUMNS), shown[start : start + COLUMNS], strict=False):
            with col, st.container(border=True):
                path = inside(root, record.image)
                if path is None:
                    st.warning("Image file missing.")
                else:
                    st.image(thumbnail(path, THUMB_PX), width="stretch", output_format="PNG")
                size = ""
                if record.bbox:
                    x0, y0, x1, y1 = record.bbox
                    size = f" · {x1 - x0:.0f}×{y1 - y0:.0f} pt"
                st.markdown(f"**{literal(figure_label(record.figure, record.page))}**{size}")
                if record.caption:
                    st.caption(literal(record.caption, 300))
                st.text(_ocr_text(record.text) or "(no text read inside the figure)")


def _ocr_text(text: str) -> str:
    """The labels part of a figure record's text ("caption\\nLabels: ...")."""
    _, sep, labels = text.partition("Labels:")
    return labels.strip() if sep else ""
