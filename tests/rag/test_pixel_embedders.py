"""CLIP / SigLIP embedders loaded from real model folders (tiny, random weights) and search by photo.

The folders are built by pixel_helpers.tiny_model and loaded through
``clip:<folder>`` / ``siglip:<folder>`` exactly as a user's downloaded folder is.
Ingest runs on a real PDF, into a real Chroma, with real OCR.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pixel_helpers import figures_manual, photo, tiny_model

from manualrag.cli import main
from manualrag.errors import EmbedderUnavailable, UnreadableImage
from manualrag.settings import EmbedSettings, Settings
from rag.embedders import IMAGE_SEARCH_HINT, embedder_id, get_embedder, hub_id, minilm_path
from rag.store import IMAGE_SUFFIX

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {kind: tiny_model(root / f"tiny-{kind}", kind) for kind in ("clip", "siglip", "siglip2")}


def _spec(kind: str, models: dict[str, Path]) -> str:
    return f"{'clip' if kind == 'clip' else 'siglip'}:{models[kind]}"


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("photos")
    return [photo(root / f"photo{i}.png", seed=i) for i in range(5)]


# -- loading, shapes, normalisation, batching ------------------------------------------------------


@pytest.mark.parametrize("kind", ["clip", "siglip", "siglip2"])
def test_folder_loads_and_embeds_both_modalities(kind: str, models: dict[str, Path], photos: list[Path]) -> None:
    embedder = get_embedder(EmbedSettings(model=_spec(kind, models), batch_size=2))
    expected_dim = 48 if kind == "clip" else 64  # CLIP projects to projection_dim; SigLIP keeps hidden size
    assert embedder.image_input is True
    assert embedder.id == embedder_id(_spec(kind, models)) == f"{_spec(kind, models).split(':')[0]}-tiny-{kind}"
    assert embedder.dim == expected_dim
    texts = embedder.embed_texts(["pump motor", "wiring diagram of the fuse relay", "front panel display"])
    images = embedder.embed_images(photos)
    assert texts.shape == (3, expected_dim) and images.shape == (5, expected_dim)
    assert texts.dtype == np.float32 and images.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1.0, atol=1e-5)
    # Batches of 2 (three calls) give the same vectors as one image at a time.
    one_by_one = np.concatenate([embedder.embed_images([p]) for p in photos])
    np.testing.assert_allclose(images, one_by_one, atol=1e-5)
    assert not np.allclose(images[0], images[1]), "different pictures must get different vectors"
    np.testing.assert_allclose(embedder.embed_queries(["pump motor"])[0], texts[0], atol=1e-5)


def test_text_longer_than_the_tower_is_cut_not_refused(models: dict[str, Path]) -> None:
    embedder = get_embedder(EmbedSettings(model=_spec("clip", models)))
    assert embedder.max_tokens == 16
    long = " ".join(["pump motor valve"] * 40)  # 120 words, far past 16 positions
    cut = embedder.embed_texts([long, " ".join(long.split()[:14])])
    np.testing.assert_allclose(cut[0], cut[1], atol=1e-5)


def test_dimensions_truncate_renormalise_and_name_the_collection(models: dict[str, Path], photos: list[Path]) -> None:
    full = get_embedder(EmbedSettings(model=_spec("siglip", models)))
    cut = get_embedder(EmbedSettings(model=_spec("siglip", models), dimensions=32))
    assert cut.dim == 32 and cut.id == f"{full.id}-d32"
    settings = Settings(_env_file=None)
    assert settings.collection_name(cut.id) != settings.collection_name(full.id), "sizes must never share a collection"
    prefix = full.embed_images(photos[:2])[:, :32]
    np.testing.assert_allclose(cut.embed_images(photos[:2]), prefix / np.linalg.norm(prefix, axis=1, keepdims=True),
                               atol=1e-5)
    with pytest.raises(EmbedderUnavailable, match="more than the 48 dimensions"):
        get_embedder(EmbedSettings(model=_spec("clip", models), dimensions=64))


# -- clear errors -----------------------------------------------------------------------------------


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(EmbedderUnavailable, match="no model folder at") as err:
        get_embedder(EmbedSettings(model=f"clip:{tmp_path / 'nowhere'}"))
    assert "\n" not in str(err.value)


def test_wrong_model_type(models: dict[str, Path]) -> None:
    with pytest.raises(EmbedderUnavailable, match="holds a 'bert' model, not CLIP") as err:
        get_embedder(EmbedSettings(model=f"clip:{minilm_path()}"))
    assert "sentence-transformers:" in str(err.value)
    with pytest.raises(EmbedderUnavailable, match=f"not CLIP: use siglip:{models['siglip']}"):
        get_embedder(EmbedSettings(model=f"clip:{models['siglip']}"))


def test_unknown_spec_and_device(models: dict[str, Path]) -> None:
    with pytest.raises(EmbedderUnavailable, match="unknown embedder 'blip:x'"):
        embedder_id("blip:x")
    with pytest.raises(EmbedderUnavailable, match="unknown embedding device 'gpu0'"):
        get_embedder(EmbedSettings(model=_spec("clip", models), device="gpu0"))
    import torch

    if torch.cuda.is_available():
        cuda = get_embedder(EmbedSettings(model=_spec("clip", models), device="cuda"))
        cpu = get_embedder(EmbedSettings(model=_spec("clip", models)))
        np.testing.assert_allclose(cuda.embed_texts(["pump"]), cpu.embed_texts(["pump"]), atol=1e-3)
    else:
        with pytest.raises(EmbedderUnavailable, match="MANUALRAG_EMBED__DEVICE=cuda but torch sees no CUDA GPU"):
            get_embedder(EmbedSettings(model=_spec("clip", models), device="cuda"))


def test_hub_id_offline_says_how_to_bring_the_folder() -> None:
    assert os.environ.get("HF_HUB_OFFLINE") == "1", "the test suite never reaches a hub"
    assert hub_id("clip:openai/clip-vit-base-patch32") == "openai/clip-vit-base-patch32"
    assert hub_id("minilm") is None and hub_id("clip:/models/clip") is None and hub_id("voyage:voyage-multimodal-3") is None
    with pytest.raises(EmbedderUnavailable) as err:
        get_embedder(EmbedSettings(model="clip:openai/clip-vit-base-patch32"))
    message = str(err.value)
    assert "Hugging Face hub" in message and "MANUALRAG_EMBED__MODEL=clip:DIR" in message and "\n" not in message


@pytest.mark.slow  # huggingface_hub itself retries five times with backoff (~24 s) before giving up
def test_hub_id_without_network_fails_cleanly(tmp_path: Path) -> None:
    """Online mode, but the hub is unreachable (a refused port on 127.0.0.1), in a fresh process."""
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        env = dict(os.environ, HF_HUB_OFFLINE="0", HF_HOME=str(tmp_path / "hf"), HF_HUB_ETAG_TIMEOUT="2",
                   HF_HUB_DOWNLOAD_TIMEOUT="2", HF_ENDPOINT=f"http://127.0.0.1:{blocker.getsockname()[1]}")
        code = (
            "from manualrag.settings import EmbedSettings\n"
            "from rag.embedders import get_embedder\n"
            "get_embedder(EmbedSettings(model='siglip:google/siglip2-base-patch16-224'))\n"
        )
        done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=120)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("manualrag.errors.EmbedderUnavailable: could not get 'google/siglip2-base-patch16-224'"), last
    assert "siglip:DIR" in last


def test_unreadable_photo(models: dict[str, Path], tmp_path: Path) -> None:
    embedder = get_embedder(EmbedSettings(model=_spec("clip", models)))
    bad = tmp_path / "photo.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(UnreadableImage, match="cannot read image"):
        embedder.embed_images([bad])
    with pytest.raises(UnreadableImage, match="no such image"):
        embedder.embed_images([tmp_path / "missing.jpg"])


def _png_bomb(path: Path, side: int) -> Path:
    """A valid 1-bit PNG of side x side pixels that is a few kilobytes on disk."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\0" * (1 + (side + 7) // 8)  # filter byte + packed bits
    packed = zlib.compressobj(9)
    idat = b"".join(packed.compress(row) for _ in range(side)) + packed.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def test_photos_are_png_jpeg_or_webp_within_a_pixel_cap(tmp_path: Path) -> None:
    import resource

    from PIL import Image

    from rag.pixel_embedders import open_image

    for fmt in ("GIF", "BMP", "TIFF"):
        other = tmp_path / f"photo.{fmt.lower()}"
        Image.new("RGB", (32, 32), "red").save(other, format=fmt)
        with pytest.raises(UnreadableImage, match="only PNG, JPEG and WebP"):
            open_image(other)
    for fmt in ("PNG", "JPEG", "WEBP"):
        fine = tmp_path / f"ok.{fmt.lower()}"
        Image.new("RGB", (64, 48), "red").save(fine, format=fmt)
        assert open_image(fine).size == (64, 48), f"a {fmt} photo opens"

    big = _png_bomb(tmp_path / "big.png", 9_000)  # 81 million pixels: under PIL's own bomb limit
    bomb = _png_bomb(tmp_path / "bomb.png", 20_000)  # 400 million pixels in a few KB
    assert bomb.stat().st_size < 200_000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(UnreadableImage, match="is 9000x9000 pixels; the limit is 50 million pixels"):
        open_image(big)
    with pytest.raises(UnreadableImage, match="is too large; the limit is 50 million pixels"):
        open_image(bomb)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 50, f"refused before decoding: peak RSS grew {grown_mb:.0f} MB"


# -- ingest and search: both modalities in one collection ------------------------------------------------


@pytest.fixture(scope="module")
def pixel_store(tmp_path_factory: pytest.TempPathFactory, models: dict[str, Path]) -> tuple[Path, str]:
    """A store with the figures manual ingested through the tiny CLIP (once per module)."""
    from manualrag.engine import Engine

    root = tmp_path_factory.mktemp("pixel")
    settings = Settings(_env_file=None)
    settings.store.path = root / "store"
    settings.ingest.workers = 1
    settings.embed.model = _spec("clip", models)
    engine = Engine(settings)
    (report,) = engine.ingest([figures_manual(root / "figures.pdf")])
    assert report.status == "ingested", report.error
    assert report.figures == 2
    engine.store.library.close()
    return settings.store.path, settings.embed.model


@pytest.fixture
def pixel_engine(pixel_store: tuple[Path, str], tmp_path: Path):  # type: ignore[no-untyped-def]
    from manualrag.engine import Engine

    settings = Settings(_env_file=None)
    settings.store.path = tmp_path / "store"
    shutil.copytree(pixel_store[0], settings.store.path)
    settings.embed.model = pixel_store[1]
    engine = Engine(settings)
    yield engine
    engine.store.library.close()


def test_figures_get_a_pixel_vector_beside_their_words(pixel_engine) -> None:  # type: ignore[no-untyped-def]
    store = pixel_engine.store
    (manual,) = store.manuals()
    records = store.library.records_of(manual.ingest_id)
    figures = [r for r in records if r.kind == "figure"]
    assert len(figures) == 2 and all(f.image for f in figures)
    assert store.count() == len(records) + len(figures), "one extra vector per figure, in the same collection"
    got = store.collection.get(where={"modality": "image"}, include=["metadatas", "embeddings"])
    assert sorted(got["ids"]) == sorted(f"{f.id}{IMAGE_SUFFIX}" for f in figures)
    assert {m["figure_id"] for m in got["metadatas"]} == {f.id for f in figures}
    assert all(m["kind"] == "figure" and m["ingest_id"] == manual.ingest_id for m in got["metadatas"])
    # The stored pixel vector is the image embedding of the figure's PNG.
    first = figures[0]
    stored = np.asarray(got["embeddings"][got["ids"].index(f"{first.id}{IMAGE_SUFFIX}")])
    fresh = pixel_engine.embedder.embed_images([store.abs_path(first.image)])[0]
    np.testing.assert_allclose(stored, fresh, atol=1e-5)
    assert manual.embedder == pixel_engine.embedder.id


def test_text_search_fuses_words_and_pixels_and_shows_each_figure_once(pixel_engine) -> None:  # type: ignore[no-untyped-def]
    result = pixel_engine.search("controller wiring diagram")
    figure_ids = {r.id for r in pixel_engine.store.library.records_of(pixel_engine.store.manuals()[0].ingest_id)
                  if r.kind == "figure"}
    pixels = [rid for rid, _ in result.trace["pixels"]]
    assert sorted(pixels) == sorted(figure_ids), "the question is also matched against every figure's pixels"
    ids = [h.id for h in result.hits]
    assert len(ids) == len(set(ids)) and not any(IMAGE_SUFFIX in i for i in ids)
    assert any(h.kind == "figure" and h.figure == "Figure 2-1" for h in result.hits)
    figures_only = pixel_engine.search("panel", kinds=["text"])
    assert figures_only.trace["pixels"] == [] and all(h.kind == "text" for h in figures_only.hits)


def test_search_by_photo_finds_the_figure_and_its_page(pixel_engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image

    store = pixel_engine.store
    (manual,) = store.manuals()
    panel = next(r for r in store.library.records_of(manual.ingest_id) if r.kind == "figure" and r.figure == "Figure 3-1")
    # A "photo" of the panel: the figure re-encoded as JPEG at another size.
    shot = tmp_path / "panel.jpg"
    with Image.open(store.abs_path(panel.image)) as img:
        img.convert("RGB").resize((img.width * 3 // 4, img.height * 3 // 4)).save(shot, quality=85)
    result = pixel_engine.search_image(shot, k=4)
    assert result.hits[0].id == panel.id and result.hits[0].kind == "figure"
    assert result.hits[0].image.endswith(panel.image) and Path(result.hits[0].image).is_file()
    context = result.hits[1]
    assert context.kind == "text" and context.page == panel.page and "F07452" in context.text, \
        "the passage of the figure's page that names it follows the figure"
    assert [h.kind for h in result.hits].count("figure") == 2 and len(result.hits) <= 4


# -- the command line ---------------------------------------------------------------------------------


def test_cli_search_image_json(pixel_store: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "store"
    shutil.copytree(pixel_store[0], store)
    shot = photo(tmp_path / "shot.png", seed=7)
    argv = ["search", "--image", str(shot), "--store", str(store), "--embedder", pixel_store[1], "--json", "-k", "3"]
    assert main(argv) == 0
    hits = json.loads(capsys.readouterr().out)
    assert 1 <= len(hits) <= 3 and hits[0]["kind"] == "figure" and hits[0]["image"].endswith(".png")
    assert main(["search", "--image", str(shot), "--store", str(store), "--embedder", pixel_store[1]]) == 0
    out = capsys.readouterr().out
    assert "[figure Figure" in out and "image:" in out


def test_cli_search_image_needs_a_pixel_embedder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shot = photo(tmp_path / "shot.png", seed=1)
    store = str(tmp_path / "store")
    assert main(["search", "--image", str(shot), "--store", store]) == 2  # the default MiniLM reads no pixels
    err = capsys.readouterr().err.strip()
    assert err == f"error: {IMAGE_SEARCH_HINT}" and "MANUALRAG_EMBED__MODEL" in err and "\n" not in err
    assert main(["search", "fuse", "--image", str(shot), "--store", store]) == 2
    assert "one of them" in capsys.readouterr().err


def test_cli_search_image_missing_photo(pixel_store: tuple[Path, str], tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "store"
    shutil.copytree(pixel_store[0], store)
    assert main(["search", "--image", str(tmp_path / "nope.jpg"), "--store", str(store),
                 "--embedder", pixel_store[1]]) == 2
    assert capsys.readouterr().err.strip() == f"error: no such image: {tmp_path / 'nope.jpg'}"


def test_cli_list_names_each_collections_embedder(pixel_store: tuple[Path, str], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "store"
    shutil.copytree(pixel_store[0], store)
    assert main(["list", "--store", str(store)]) == 0  # the default MiniLM: an empty collection here
    out = capsys.readouterr().out
    assert "embedder minilm-l6-v2" in out and "no manuals yet" in out
    assert f"embedder {embedder_id(pixel_store[1])}: 1 manuals" in out, out
    assert main(["list", "--store", str(store), "--embedder", pixel_store[1], "--json"]) == 0
    (manual,) = json.loads(capsys.readouterr().out)
    assert manual["embedder"] == embedder_id(pixel_store[1])
