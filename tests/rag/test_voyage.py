"""The Voyage multimodal embedder against a local fake of its HTTP API (never the real service).

Request shape, batching by count and by tokens, 429 / 5xx retries, error messages
and an ingest + search round trip with both modalities in one collection.
"""

from __future__ import annotations

import base64
import io
import logging
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pixel_helpers import figures_manual, photo
from voyage_helpers import KEY, FakeVoyage, Reply

from manualrag.errors import EmbedderUnavailable
from manualrag.settings import EmbedSettings, Settings
from rag.embedders import get_embedder
from rag.store import IMAGE_SUFFIX
from rag.voyage import IMAGE_MAX_SIDE, VoyageEmbedder, pack


@pytest.fixture
def fake() -> Iterator[FakeVoyage]:
    server = FakeVoyage()
    yield server
    server.close()


def _settings(fake: FakeVoyage, model: str = "voyage-multimodal-3", **fields: object) -> EmbedSettings:
    values: dict[str, object] = {"model": f"voyage:{model}", "api_key": KEY, "api_base_url": fake.url} | fields
    return EmbedSettings(**values)  # type: ignore[arg-type]


def test_text_request_shape(fake: FakeVoyage, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    embedder = get_embedder(_settings(fake))
    assert isinstance(embedder, VoyageEmbedder) and embedder.image_input and embedder.dim == 1024
    assert embedder.id == "voyage-multimodal-3"
    docs = embedder.embed_texts(["Replace fuse F3", "Motor wiring diagram"])
    (request,) = fake.requests
    assert request["path"] == "/v1/multimodalembeddings"
    assert request["headers"]["authorization"] == f"Bearer {KEY}"
    assert request["body"] == {
        "inputs": [{"content": [{"type": "text", "text": "Replace fuse F3"}]},
                   {"content": [{"type": "text", "text": "Motor wiring diagram"}]}],
        "model": "voyage-multimodal-3",
        "input_type": "document",
        "truncation": True,
    }
    assert docs.shape == (2, 1024) and docs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-5)
    query = embedder.embed_queries(["motor wiring diagram"])
    assert fake.requests[-1]["body"]["input_type"] == "query"
    # The fake answers in reverse order: rows must follow the "index" field.
    assert float(query[0] @ docs[1]) > 0.99 > float(query[0] @ docs[0])
    assert KEY not in caplog.text, "the API key must never reach the log"


def test_images_go_as_downscaled_png_data_urls(fake: FakeVoyage, tmp_path: Path) -> None:
    from PIL import Image

    embedder = get_embedder(_settings(fake))
    big = photo(tmp_path / "big.jpg", seed=1, size=(3200, 1000))
    other = photo(tmp_path / "other.png", seed=2)
    vectors = embedder.embed_images([big, other, big])
    (request,) = fake.requests
    parts = [item["content"] for item in request["body"]["inputs"]]
    assert all(len(p) == 1 and p[0]["type"] == "image_base64" for p in parts)
    url = parts[0][0]["image_base64"]
    assert url.startswith("data:image/png;base64,")
    with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as sent:
        assert sent.size == (IMAGE_MAX_SIDE, 500), "long side cut to IMAGE_MAX_SIDE, aspect kept"
    assert request["body"]["input_type"] == "document"
    np.testing.assert_allclose(vectors[0], vectors[2], atol=1e-6)
    assert abs(float(vectors[0] @ vectors[1])) < 0.5


def test_batches_by_count(fake: FakeVoyage) -> None:
    embedder = get_embedder(_settings(fake, batch_size=3))
    vectors = embedder.embed_texts([f"text {i}" for i in range(7)])
    assert [len(r["body"]["inputs"]) for r in fake.requests] == [3, 3, 1]
    assert vectors.shape == (7, 1024)
    assert [r["body"]["inputs"][0]["content"][0]["text"] for r in fake.requests] == ["text 0", "text 3", "text 6"]


@pytest.mark.parametrize(
    ("costs", "max_inputs", "max_tokens", "expected"),
    [
        ([], 10, 100, []),
        ([10, 10, 10], 10, 100, [(0, 3)]),
        ([10, 10, 10], 2, 100, [(0, 2), (2, 3)]),
        ([60, 30, 20, 90], 10, 100, [(0, 2), (2, 3), (3, 4)]),
        ([150, 10], 10, 100, [(0, 1), (1, 2)]),  # an input over the budget goes alone; the API truncates it
    ],
)
def test_pack_respects_input_and_token_limits(
    costs: list[int], max_inputs: int, max_tokens: int, expected: list[tuple[int, int]]
) -> None:
    assert [(r.start, r.stop) for r in pack(costs, max_inputs, max_tokens)] == expected


def test_images_split_by_their_token_cost(fake: FakeVoyage, tmp_path: Path) -> None:
    embedder = get_embedder(_settings(fake, batch_size=100))
    # A budget of 25 tokens per request (the real one is 300k) keeps the pictures small:
    # 140 x 40 pixels cost 10 tokens (560 pixels each), so two fit in a request, not three.
    embedder.max_request_tokens = 25
    shot = photo(tmp_path / "strip.png", seed=3, size=(140, 40))
    vectors = embedder.embed_images([shot] * 5)
    assert [len(r["body"]["inputs"]) for r in fake.requests] == [2, 2, 1]
    assert vectors.shape == (5, 1024)


def test_rate_limit_and_server_errors_are_retried(fake: FakeVoyage) -> None:
    fake.script = [Reply(429, {"detail": "rate limited"}, {"retry-after": "0"}),
                   Reply(503, {"detail": "busy"}, {"retry-after": "0"})]
    vectors = get_embedder(_settings(fake)).embed_texts(["pump"])
    assert len(fake.requests) == 3 and vectors.shape == (1, 1024)
    assert fake.requests[0]["body"] == fake.requests[2]["body"], "a retry sends the same request"


def test_gives_up_after_max_retries(fake: FakeVoyage) -> None:
    fake.script = [Reply(429, {"detail": "rate limited"}, {"retry-after": "0"})] * 3
    with pytest.raises(EmbedderUnavailable, match=r"failed after 3 tries: HTTP 429 \(rate limit\)"):
        get_embedder(_settings(fake, max_retries=2)).embed_texts(["pump"])
    assert len(fake.requests) == 3


def test_bad_key_fails_at_once_without_showing_it(fake: FakeVoyage) -> None:
    wrong = "vk-wrong-secret-value"
    embedder = get_embedder(_settings(fake, api_key=wrong))
    with pytest.raises(EmbedderUnavailable, match="rejected the API key.*MANUALRAG_EMBED__API_KEY") as err:
        embedder.embed_texts(["pump"])
    assert wrong not in str(err.value) and len(fake.requests) == 1, "a 401 is not retried"
    assert wrong not in repr(_settings(fake, api_key=wrong)), "the settings never print the key"


def test_refused_request_shows_the_apis_reason(fake: FakeVoyage) -> None:
    fake.script = [Reply(400, {"detail": "Input 0 has more than 16 million pixels."})]
    with pytest.raises(EmbedderUnavailable, match="HTTP 400: Input 0 has more than 16 million pixels"):
        get_embedder(_settings(fake)).embed_texts(["pump"])
    assert len(fake.requests) == 1


def test_unreachable_api(tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        settings = EmbedSettings(model="voyage:voyage-multimodal-3", api_key=KEY, max_retries=1,
                                 api_base_url=f"http://127.0.0.1:{blocker.getsockname()[1]}/v1")
        embedder = get_embedder(settings)
        embedder.backoff_s = 0.01
        with pytest.raises(EmbedderUnavailable, match="failed after 2 tries: cannot reach http://127.0.0.1"):
            embedder.embed_texts(["pump"])


def test_settings_errors(fake: FakeVoyage) -> None:
    with pytest.raises(EmbedderUnavailable, match="needs an API key: set MANUALRAG_EMBED__API_KEY"):
        get_embedder(_settings(fake, api_key=""))
    with pytest.raises(EmbedderUnavailable, match="returns 1024 dimensions, not 512"):
        get_embedder(_settings(fake, dimensions=512))


def test_output_dimension_for_models_that_support_it(fake: FakeVoyage) -> None:
    embedder = get_embedder(_settings(fake, model="voyage-multimodal-3.5", dimensions=512))
    assert embedder.dim == 512 and embedder.id == "voyage-multimodal-3.5-d512"
    vectors = embedder.embed_texts(["pump"])
    assert fake.requests[0]["body"]["output_dimension"] == 512 and vectors.shape == (1, 512)


# -- ingest and search through the fake API -----------------------------------------------------------


def test_ingest_and_search_by_text_and_photo(fake: FakeVoyage, tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    from manualrag.engine import Engine

    caplog.set_level(logging.DEBUG)
    settings = Settings(_env_file=None)
    settings.store.path = tmp_path / "store"
    settings.ingest.workers = 1
    settings.embed = _settings(fake)
    engine = Engine(settings)
    (report,) = engine.ingest([figures_manual(tmp_path / "figures.pdf")])
    assert report.status == "ingested", report.error
    store = engine.store
    (manual,) = store.manuals()
    records = store.library.records_of(manual.ingest_id)
    figures = [r for r in records if r.kind == "figure"]
    assert len(figures) == 2 and store.count() == len(records) + 2
    kinds = {part["type"] for r in fake.requests for item in r["body"]["inputs"] for part in item["content"]}
    assert kinds == {"text", "image_base64"}, "texts and figure images both went to the multimodal API"

    wiring = engine.search("controller wiring diagram")
    assert wiring.trace["pixels"] and wiring.hits[0].figure == "Figure 2-1"

    panel = next(f for f in figures if f.figure == "Figure 3-1")
    shot = tmp_path / "panel.png"
    shutil.copyfile(store.abs_path(panel.image), shot)
    by_photo = engine.search_image(shot, k=3)
    assert by_photo.hits[0].id == panel.id and abs(by_photo.hits[0].score - 1.0) < 1e-4
    assert by_photo.hits[1].page == panel.page and by_photo.hits[1].kind == "text"
    image_ids = store.collection.get(where={"modality": "image"})["ids"]
    assert sorted(image_ids) == sorted(f"{f.id}{IMAGE_SUFFIX}" for f in figures)
    assert KEY not in caplog.text
    store.library.close()
