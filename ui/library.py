"""The library: what is in it, adding manuals (everyone), removing and re-ingesting (staff).

Uploads are checked and queued at once (ui/jobs.py) and ingested in the background;
a fragment that reruns every second shows their progress while the rest of the
page, the chat included, stays usable.
"""

from __future__ import annotations

import streamlit as st

from manualrag.errors import ManualragError
from ui import auth
from ui.jobs import UploadJob
from ui.owner import owner_token
from ui.safe import literal
from ui.services import Ctx

MY_UPLOADS = "my_upload_jobs"  # ids of the jobs this browser session submitted
UPLOADER_GENERATION = "uploader_generation"  # bumped to empty the file picker after a submit
CONFIRM_REMOVE = "confirm_remove"
POLL_S = 1.0


# -- adding manuals (sidebar) ------------------------------------------------------------------


def upload_panel(ctx: Ctx) -> None:
    limit = ctx.settings.ui.max_upload_mb
    generation = st.session_state.setdefault(UPLOADER_GENERATION, 0)
    files = st.file_uploader(
        "Add manuals",
        accept_multiple_files=True,
        key=f"uploader-{generation}",
        help=f"PDF files up to {limit} MiB each. Several at once are fine; they are added one after another.",
    )
    if files:
        mine = st.session_state.setdefault(MY_UPLOADS, [])
        staff = ctx.staff  # staff may replace a manual of the same name; technicians may not
        for file in files:
            job = ctx.svc.uploads.submit_upload(
                file.name, file.getvalue(), may_replace=staff, owner=owner_token()
            )
            mine.append(job.id)
        st.session_state[UPLOADER_GENERATION] = generation + 1
        st.rerun()  # a fresh, empty file picker; the jobs show below
    _jobs_area(ctx)


def _my_jobs(ctx: Ctx) -> list[UploadJob]:
    return ctx.svc.uploads.jobs(st.session_state.get(MY_UPLOADS, []))


def _jobs_area(ctx: Ctx) -> None:
    jobs = _my_jobs(ctx)
    if any(j.active for j in jobs):
        _live_jobs(ctx)
    elif jobs:
        _draw_jobs(jobs)
        st.button("Clear", key="clear_uploads", type="tertiary", on_click=_clear_finished)


@st.fragment(run_every=POLL_S)
def _live_jobs(ctx: Ctx) -> None:
    jobs = _my_jobs(ctx)
    _draw_jobs(jobs)
    if not any(j.active for j in jobs):
        st.rerun()  # the whole page: the new manuals join the picker and the library


def _clear_finished() -> None:
    st.session_state[MY_UPLOADS] = []


_STAGES = {"pages": "reading pages", "embedding": "indexing", "reading": "opening the file"}


def _draw_jobs(jobs: list[UploadJob]) -> None:
    for job in jobs:
        name = literal(job.manual or job.filename, 60)  # the cleaned name the library uses
        if job.state == "queued":
            st.progress(0.0, text=f"{name}: waiting for the file before it")
        elif job.state == "running":
            stage = _STAGES.get(job.stage, job.stage)
            count = f" {job.done}/{job.total}" if job.total else ""
            verb = "re-ingesting" if job.kind == "reingest" else ""
            st.progress(job.fraction, text=f"{name}: {verb} {literal(stage)}{count}…")
        elif job.state == "done":
            st.success(f"{name}: {literal(job.message)}", icon=":material/check_circle:")
        elif job.state == "duplicate":
            st.info(f"{name}: {literal(job.message)}", icon=":material/content_copy:")
        else:
            st.error(f"{name}: {literal(job.message)}", icon=":material/error:")


# -- the library page --------------------------------------------------------------------------


def library_view(ctx: Ctx) -> None:
    st.header("Library")
    manuals = ctx.svc.engine.manuals()
    if not manuals:
        st.info("No manuals yet: add PDF manuals with **Add manuals** in the sidebar.")
        return
    st.dataframe(
        [
            {
                "Manual": m.name,
                "Pages": m.pages,
                "Figures": m.figures,
                "with OCR text": m.figures_with_ocr,
                "Pages OCR'd": m.ocr_pages,
                "Chunks": m.chunks,
                "Ingested": m.ingested_at.replace("T", " ").removesuffix("+00:00") + " UTC",
                "Warnings": len(m.warnings),
            }
            for m in manuals
        ],
        hide_index=True,
        width="stretch",
    )
    staff = ctx.staff
    if not staff:
        st.caption("Support staff can remove or re-ingest manuals and see ingest warnings.")
        return
    busy = ctx.svc.uploads.busy()
    for m in manuals:
        title = f"{m.name} · {len(m.warnings)} warning{'s' if len(m.warnings) != 1 else ''}"
        with st.expander(literal(title, 100)):
            if m.warnings:
                st.text(
                    "\n".join(m.warnings[:50])
                    + (f"\n… and {len(m.warnings) - 50} more" if len(m.warnings) > 50 else "")
                )
            else:
                st.caption("No warnings.")
            row = st.container(horizontal=True)
            if st.session_state.get(CONFIRM_REMOVE) == m.name:
                row.button(
                    "Yes, remove it",
                    key=f"remove-yes-{m.name}",
                    type="primary",
                    icon=":material/delete:",
                    on_click=remove_manual,
                    args=(ctx, m.name),
                )
                row.button("Cancel", key=f"remove-no-{m.name}", on_click=_ask_remove, args=(ctx, None))
            else:
                row.button(
                    "Remove",
                    key=f"remove-{m.name}",
                    icon=":material/delete:",
                    disabled=busy,
                    on_click=_ask_remove,
                    args=(ctx, m.name),
                )
                row.button(
                    "Re-ingest",
                    key=f"reingest-{m.name}",
                    icon=":material/refresh:",
                    disabled=busy,
                    on_click=reingest_manual,
                    args=(ctx, m.name),
                    help="Read the stored PDF again with the current settings",
                )
    if busy:
        st.caption("Removing and re-ingesting wait until the uploads in progress are done.")


def _ask_remove(ctx: Ctx, name: str | None) -> None:
    if not auth.allowed(ctx.settings.ui, "remove manuals"):
        return
    st.session_state[CONFIRM_REMOVE] = name


def remove_manual(ctx: Ctx, name: str) -> None:
    """Staff action. The role is checked here, whatever the page showed."""
    st.session_state.pop(CONFIRM_REMOVE, None)
    if not auth.allowed(ctx.settings.ui, "remove manuals"):
        return
    if ctx.svc.uploads.busy():
        auth.notify("warning", "An upload is being ingested: remove the manual when it is done.")
        return
    try:
        removed = ctx.svc.engine.remove(name)
    except ManualragError as err:
        auth.notify("error", literal(str(err)))
        return
    auth.notify(
        "success" if removed else "warning",
        literal(f"Removed {name}." if removed else f"{name} was not in the library."),
    )


def reingest_manual(ctx: Ctx, name: str) -> None:
    """Staff action: queue a fresh ingest from the stored copy; progress shows in the sidebar."""
    if not auth.allowed(ctx.settings.ui, "re-ingest manuals"):
        return
    job = ctx.svc.uploads.submit_reingest(name)
    st.session_state.setdefault(MY_UPLOADS, []).append(job.id)
    auth.notify("info", literal(f"Re-ingesting {name}: progress shows under Add manuals."))
