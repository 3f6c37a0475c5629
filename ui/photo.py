"""Search by photo in the chat: a picture of a part, panel or diagram finds the figures like it.

Offered only when the embedder reads pixels (clip:, siglip:, voyage:). The photo is
written to a private temp file for the engine, searched, and deleted; the result
(figures and a passage of each one's page) stays in this browser session only.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import streamlit as st

from manualrag.engine import Engine
from manualrag.errors import ManualragError
from manualrag.types import Hit
from ui.render import figure_label, thumbnail
from ui.safe import inside, literal
from ui.viewer import View, open_view

PHOTO_TYPES = ["png", "jpg", "jpeg", "webp"]
RESULT = "photo_result"
MAX_PHOTO_BYTES = 20 << 20  # a phone photo is 2-8 MB; anything bigger is not a photo
THUMBS_PER_ROW = 3


@dataclass
class PhotoResult:
    name: str
    hits: list[Hit] = field(default_factory=list)
    error: str = ""


def split_submission(value: Any) -> tuple[str | None, Any | None]:
    """(question text, first attached file) from st.chat_input, with or without ``accept_file``."""
    if value is None or isinstance(value, str):
        return value, None
    files = list(getattr(value, "files", None) or [])
    return getattr(value, "text", None), (files[0] if files else None)


def photo_search(engine: Engine, name: str, data: bytes, scope: list[str]) -> PhotoResult:
    """Figures that look like the photo ``data`` (named ``name`` by the browser)."""
    if len(data) > MAX_PHOTO_BYTES:
        return PhotoResult(name, error=f"That photo is over {MAX_PHOTO_BYTES >> 20} MB: send a smaller one.")
    suffix = Path(name).suffix.lower() if Path(name).suffix.lower() in {f".{t}" for t in PHOTO_TYPES} else ".img"
    with tempfile.NamedTemporaryFile(suffix=suffix) as handle:
        handle.write(data)
        handle.flush()
        try:
            result = engine.search_image(Path(handle.name), scope or None)
        except ManualragError as err:
            # The temp file's name means nothing to the user: speak of "the photo".
            return PhotoResult(name, error=str(err).replace(handle.name, "the photo"))
    return PhotoResult(name, hits=result.hits)


def photo_panel(ctx: Any, found: PhotoResult) -> None:
    with st.chat_message("user"):
        st.markdown(f":material/photo_camera: {literal(found.name, 80)}")
    with st.chat_message("assistant"):
        if found.error:
            st.error(literal(found.error, 400), icon=":material/error:")
            return
        figures = [h for h in found.hits if h.kind == "figure"]
        if not figures:
            st.info("No figure in the manuals looks like this photo.")
            return
        st.markdown("Figures that look like your photo, most alike first:")
        root = ctx.svc.engine.store.root
        side = ctx.settings.ui.thumb_px
        for start in range(0, len(figures), THUMBS_PER_ROW):
            for col, hit in zip(st.columns(THUMBS_PER_ROW), figures[start : start + THUMBS_PER_ROW], strict=False):
                with col:
                    _figure(hit, root, side, start)
        passages = [h for h in found.hits if h.kind != "figure"]
        if passages:
            box = st.container(horizontal=True, gap="small", vertical_alignment="center")
            box.caption("Their pages:", width="content")
            for n, hit in enumerate(passages):
                label = f"{hit.manual} p.{hit.page}"
                box.button(literal(label, 90), key=f"photo-page-{n}", icon=":material/description:",
                           type="tertiary", help="Show the page", on_click=open_view,
                           args=(View(kind="page", manual=hit.manual, page=hit.page, cited_page=hit.page,
                                      bbox=hit.bbox, label=label),))


def _figure(hit: Hit, root: Path, side: int, start: int) -> None:
    label = f"{figure_label(hit.figure, hit.page)} · {hit.manual}"
    path = inside(root, hit.image)
    if path is None:
        st.caption(literal(f"{label}: no longer stored"))
        return
    st.image(thumbnail(path, side), width="content", output_format="PNG")
    st.button(literal(label, 80), key=f"photo-fig-{hit.id}-{start}", icon=":material/zoom_in:", type="tertiary",
              help="Open large", on_click=open_view,
              args=(View(kind="figure", manual=hit.manual, page=hit.page, cited_page=hit.page, bbox=hit.bbox,
                         label=label, figure=hit.figure, image=hit.image, text=hit.text),))
