"""manualrag in the browser: `manualrag serve` runs this file with Streamlit.

A thin shell: it reads the settings, gets the shared services (built once per
process, ui/services.py), draws the sidebar and hands the page to one view. No
retrieval happens here; every answer, search and ingest goes through the Engine.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Streamlit runs this file as a script: the project root is not on the path unless installed.
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import streamlit as st  # noqa: E402
from pydantic import ValidationError  # noqa: E402

from manualrag.errors import ManualragError  # noqa: E402
from manualrag.settings import Settings  # noqa: E402
from ui import auth  # noqa: E402
from ui.chat import chat_view, new_conversation, open_conversation  # noqa: E402
from ui.gallery import gallery_view  # noqa: E402
from ui.library import library_view, upload_panel  # noqa: E402
from ui.owner import owner_token, remember_owner  # noqa: E402
from ui.review import review_view  # noqa: E402
from ui.safe import literal, one_line  # noqa: E402
from ui.services import Ctx, services  # noqa: E402

log = logging.getLogger("manualrag.ui")

ASK, LIBRARY, REVIEW, FIGURES = "Ask", "Library", "Review", "Figures"
SCOPE = "scope"


def _settings() -> Settings | None:
    try:
        return Settings()
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        st.error(literal(f"configuration error in {where}: {first.get('msg', 'invalid value')}"))
        return None


def _sidebar(ctx: Ctx) -> tuple[str, list[str]]:
    svc = ctx.svc
    staff = ctx.staff
    st.title("manualrag")
    views = [ASK, LIBRARY] + ([REVIEW, FIGURES] if staff else [])
    if st.session_state.get("view") not in views:
        st.session_state["view"] = ASK
    view = st.radio("View", views, key="view", horizontal=True, label_visibility="collapsed")

    names = [m.name for m in svc.engine.manuals()]
    # A removed manual must not linger in the picker's state (Streamlit would refuse it).
    st.session_state[SCOPE] = [n for n in st.session_state.get(SCOPE, []) if n in names]
    scope = st.multiselect(
        "Manuals to search", names, key=SCOPE, placeholder="All manuals", disabled=not names
    )

    if view == ASK:
        st.button(
            "New conversation",
            key="new_conversation",
            icon=":material/add_comment:",
            on_click=new_conversation,
            width="stretch",
        )
        recent = svc.conversations.recent(owner_token(), limit=15)  # this browser's only
        if recent:
            with st.expander("Recent conversations"):
                for conv in recent:
                    st.button(
                        literal(conv.title, 60),
                        key=f"conv-{conv.id}",
                        type="tertiary",
                        on_click=open_conversation,
                        args=(conv.id,),
                    )

    st.divider()
    upload_panel(ctx)
    st.divider()
    if svc.warmup.llm_ready or svc.warmup.llm_error:
        _model_status(ctx)
    else:
        _model_status_live(ctx)
    auth.sign_in_panel(ctx.settings.ui, svc.throttle)
    remember_owner()
    return view, scope


def _model_status(ctx: Ctx) -> None:
    warm = ctx.svc.warmup
    if warm.llm_error:
        st.caption(f":material/error: Answer model unavailable: {literal(one_line(warm.llm_error, 300))}")
    elif warm.llm_ready:
        st.caption(":material/check_circle: Search and answer models ready.")
    else:
        st.caption(f":material/hourglass_top: {literal(warm.stage.capitalize())} Questions wait for it.")


@st.fragment(run_every=2.0)
def _model_status_live(ctx: Ctx) -> None:
    """Polls while the models load; once they are, the whole page redraws and polling stops."""
    warm = ctx.svc.warmup
    if warm.llm_ready or warm.llm_error:
        st.rerun()
    _model_status(ctx)


@st.cache_resource(show_spinner=False)
def _icon() -> Any:
    """The favicon, drawn here: Streamlit fetches emoji and :material: icons from Google's CDN,
    which an offline site cannot reach and an online one should not call."""
    from PIL import Image, ImageDraw

    img = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    draw.rounded_rectangle((4, 4, 60, 60), radius=12, fill=(37, 99, 235))
    draw.rectangle((18, 16, 46, 48), outline=(255, 255, 255), width=4)  # a manual
    draw.line((24, 26, 40, 26), fill=(255, 255, 255), width=3)
    draw.line((24, 34, 40, 34), fill=(255, 255, 255), width=3)
    return img


def main() -> None:
    st.set_page_config(page_title="manualrag", page_icon=_icon(), layout="wide")
    settings = _settings()
    if settings is None:
        return
    try:
        ctx = Ctx(services(settings), settings)
        with st.sidebar:
            view, scope = _sidebar(ctx)
        auth.show_notices()
        if view == LIBRARY:
            library_view(ctx)
        elif view == REVIEW:
            review_view(ctx)
        elif view == FIGURES:
            gallery_view(ctx)
        else:
            chat_view(ctx, scope)
    except ManualragError as err:
        st.error(literal(str(err), 400))
    except Exception as err:  # noqa: BLE001 - the one boundary that catches broadly: one line, no traceback
        log.exception("page failed")
        st.error(
            literal(f"Something went wrong ({type(err).__name__}); the details are in the server log.", 400)
        )


main()
