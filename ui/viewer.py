"""The source viewer beside the chat: a cited page with its passage outlined, or a figure large.

Opening a citation or a thumbnail stores a small ``View`` in the session; the chat
page then draws this panel in a column next to the conversation. Stepping through
pages keeps the cited page and box, so coming back shows the outline again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import streamlit as st

from manualrag.types import BBox
from ui.render import figure_label, page_png
from ui.safe import inside, literal
from ui.services import Services

VIEW = "source_view"  # session key


@dataclass(frozen=True)
class View:
    kind: str  # "page" or "figure"
    manual: str
    page: int  # the page shown
    cited_page: int  # the page the citation points at
    bbox: BBox | None = None  # outlined when page == cited_page
    label: str = ""  # "[2] Figure 2-1" etc., shown as the title
    figure: str = ""
    image: str = ""  # figure PNG (absolute or relative to the store)
    text: str = ""  # figure caption and labels read inside it


def open_view(view: View) -> None:
    st.session_state[VIEW] = view


def close_view() -> None:
    st.session_state.pop(VIEW, None)


def _step(delta: int, count: int) -> None:
    view: View | None = st.session_state.get(VIEW)
    if view is not None:
        st.session_state[VIEW] = replace(view, kind="page", page=min(max(1, view.page + delta), count))


def _show_on_page() -> None:
    view: View | None = st.session_state.get(VIEW)
    if view is not None:
        st.session_state[VIEW] = replace(view, kind="page", page=view.cited_page)


def current_view() -> View | None:
    return st.session_state.get(VIEW)


def viewer_panel(svc: Services, dpi: int) -> None:
    view = current_view()
    if view is None:
        return
    top = st.container(horizontal=True, vertical_alignment="center")
    top.markdown(f"**{literal(view.label or view.manual, 80)}**")
    top.button("Close", key="viewer_close", icon=":material/close:", on_click=close_view, type="tertiary")
    if view.kind == "figure":
        _figure(svc, view)
    else:
        _page(svc, view, dpi)


def _figure(svc: Services, view: View) -> None:
    path = inside(svc.engine.store.root, view.image)
    if path is None:
        st.warning("This figure is no longer stored (its manual was removed or ingested again).")
    else:
        st.image(str(path), width="stretch", output_format="PNG")  # line art: no JPEG blur
    st.caption(literal(f"{view.manual} · {figure_label(view.figure, view.cited_page)}"))
    if view.text:
        with st.expander("Caption and labels read inside the figure", expanded=True):
            st.text(view.text)
    st.button(
        "Show it on the page", key="viewer_on_page", icon=":material/description:", on_click=_show_on_page
    )


def _page(svc: Services, view: View, dpi: int) -> None:
    info = next((m for m in svc.engine.manuals() if m.name == view.manual), None)
    pdf = inside(svc.engine.store.root, info.pdf_path) if info else None
    if info is None or pdf is None:
        st.warning("This manual is no longer in the library.")
        return
    count = max(info.pages, 1)
    page = min(max(1, view.page), count)
    on_cited = page == view.cited_page
    png, count = page_png(pdf, page, view.bbox if on_cited else None, dpi)
    nav = st.container(horizontal=True, vertical_alignment="center")
    nav.button(
        "Previous page",
        key="viewer_prev",
        icon=":material/chevron_left:",
        disabled=page <= 1,
        on_click=_step,
        args=(-1, count),
    )
    nav.markdown(f"Page {page} of {count}")
    nav.button(
        "Next page",
        key="viewer_next",
        icon=":material/chevron_right:",
        disabled=page >= count,
        on_click=_step,
        args=(1, count),
    )
    st.image(png, width="stretch", output_format="PNG")
    if on_cited and view.bbox is not None:
        st.caption("The cited part is outlined in red.")
    elif not on_cited:
        st.caption(f"The citation is on page {view.cited_page}.")
