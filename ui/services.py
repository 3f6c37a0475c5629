"""What the app builds once per process and shares between browser sessions.

The engine (embedder, store, LLM client), the conversation store and the upload
queue are built by ``st.cache_resource``, keyed on the settings that shape them,
so every session and every rerun talks to the same ones. A warm-up thread loads
the search and answer models in the background: the page opens at once and says
what is still loading.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import streamlit as st

from manualrag import logs
from manualrag.conversations import Conversations
from manualrag.engine import Engine
from manualrag.errors import ManualragError
from manualrag.settings import Settings
from manualrag.throttle import SignInThrottle
from ui.jobs import UploadQueue

log = logging.getLogger(__name__)


class Warmup:
    """Loads the embedder, then the answer model, in a background thread."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.search_ready = False
        self.llm_ready = False
        self.llm_error = ""
        self.stage = "loading the search model…"
        threading.Thread(target=self._run, name="manualrag-warmup", daemon=True).start()

    def _run(self) -> None:
        try:
            self.engine.embedder  # noqa: B018 - the property loads the model
            self.search_ready = True
            self.stage = "loading the answer model…"
            self.engine.answerer.prepare()
            self.llm_ready = True
            self.stage = "ready"
        except ManualragError as err:
            self.llm_error = str(err)
            self.stage = "failed"
        except Exception as err:  # noqa: BLE001 - reported on the page; questions retry and say why
            log.exception("warm-up failed")
            self.llm_error = f"{type(err).__name__}: {err}"
            self.stage = "failed"


@dataclass
class Services:
    engine: Engine
    conversations: Conversations
    uploads: UploadQueue
    warmup: Warmup
    throttle: SignInThrottle


@st.cache_resource(show_spinner=False, max_entries=4)
def _build(key: str, _settings: Settings) -> Services:
    # JSON or text logs with per-request timings, secrets masked (MANUALRAG_LOG__*).
    logs.configure(_settings, default_level="INFO")
    engine = Engine(_settings)
    engine.store.drop_stale_uploads()  # opens the store now (the first page lists the library)
    conversations = Conversations(_settings.store.path / "app.db")
    ui = _settings.ui
    uploads = UploadQueue(
        engine, ui.max_upload_mb << 20, ui.max_queued_mb << 20, ui.max_queued_mb_per_browser << 20
    )
    throttle = SignInThrottle(_settings.store.path / "app.db")
    return Services(engine, conversations, uploads, Warmup(engine), throttle)


def services(settings: Settings) -> Services:
    # The UI group (passwords, page dpi) is read fresh on every run and shapes
    # nothing built here; everything else does.
    ui = settings.ui
    key = settings.model_dump_json(exclude={"ui"}) + f"|{ui.max_upload_mb}|{ui.max_queued_mb}"
    key += f"|{ui.max_queued_mb_per_browser}"
    return _build(key, settings)


@dataclass
class Ctx:
    """What every view and action handler gets: the shared services and this run's settings."""

    svc: Services
    settings: Settings

    @property
    def staff(self) -> bool:
        # Asked afresh at each use: an action handler checks the role when it runs.
        from ui import auth

        return auth.is_staff(self.settings.ui)
