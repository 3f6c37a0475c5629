"""A photo attached in the chat finds the figures that look like it (pixel embedder only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pixel_helpers import figures_manual, tiny_model
from uihelpers import all_text, button

from manualrag.settings import Settings


@pytest.fixture(scope="module")
def clip_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The figures manual ingested with a tiny CLIP: (store, embedder spec)."""
    from manualrag.engine import Engine

    root = tmp_path_factory.mktemp("ui-pixel")
    settings = Settings(_env_file=None)
    settings.store.path = root / "store"
    settings.ingest.workers = 1
    settings.embed.model = f"clip:{tiny_model(root / 'tiny-clip', 'clip')}"
    engine = Engine(settings)
    (report,) = engine.ingest([figures_manual(root / "figures.pdf")])
    assert report.status == "ingested", report.error
    engine.store.library.close()
    return settings.store.path, settings.embed.model


def test_photo_in_the_chat_shows_alike_figures_and_their_pages(
    make_app: Any, clip_store: tuple[Path, str], fake_llm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, spec = clip_store
    at = make_app(store, fake_llm.url)
    monkeypatch.setenv("MANUALRAG_EMBED__MODEL", spec)
    at.run()
    assert "attach a photo" in at.chat_input[0].placeholder
    panel = next((store / "figures").rglob("p3-f*.png"))
    at.chat_input[0].upload("panel.png", panel.read_bytes(), "image/png")
    at.run()
    text = all_text(at)
    assert "Figures that look like your photo" in text, text
    labels = [str(b.label).replace("\\", "") for b in at.button]
    figure_buttons = [label for label in labels if label.startswith("Figure ")]
    assert figure_buttons[0] == "Figure 3-1, p.3 · figures.pdf", f"the panel itself first: {labels}"
    assert "figures.pdf p.3" in labels, "the page around the figure is offered too"
    button(at, "Figure 3-1, p.3").click().run()
    assert "Figure 3-1" in all_text(at) and at.image, "the figure opens large"

    at.chat_input[0].upload("broken.jpg", b"not a photo", "image/jpeg")
    at.run()
    errors = [str(e.value).replace("\\", "") for e in at.error]
    assert any("cannot read image the photo" in e for e in errors), errors
