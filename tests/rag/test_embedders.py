"""The default embedder: all-MiniLM-L6-v2 as ONNX on onnxruntime, against the same model on torch.

The torch side is the real sentence-transformers model from the bundled folder (the `torch`
extra, which `make test` installs). Texts are NEETS-like passages built here, a question, a
one-word query and a passage longer than the model's 256 tokens.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ingest.ocr import EasyOcrEngine
from manualrag import doctor
from manualrag.errors import EmbedderUnavailable, OcrUnavailable
from manualrag.settings import EmbedSettings, Settings
from rag.embedders import (
    MINILM_ONNX,
    MINILM_ONNX_SHA256,
    OnnxMiniLmEmbedder,
    embedder_id,
    get_embedder,
    minilm_path,
    required_extra,
)

ROOT = Path(__file__).resolve().parents[2]

PASSAGES = [
    "What size fuse protects the wiper motor circuit?",
    "pump",
    "Torque the housing cover bolts to 25 N·m in a cross pattern, then check the seal for leaks.",
    "A fuse is a protective device that opens a circuit when the current exceeds a safe value. "
    "The fuse element melts and breaks the circuit; the rating is printed on the end cap. "
    "Never replace a fuse with one of a higher rating than the circuit calls for.",
    "Figure 3-11. Wiring diagram of the motor controller. Labels: MAIN BREAKER, CONTACTOR K1, "
    "OVERLOAD RELAY, MOTOR M1, FUSE F3 20 AMP, TERMINAL TB1.",
    # Longer than 256 tokens: both sides must cut it at the same place.
    " ".join(
        f"Step {i}. Remove the {part} and inspect it for wear, corrosion and heat damage before refitting."
        for i, part in enumerate(["relay", "breaker", "terminal block", "contactor", "fuse holder"] * 6)
    ),
]


@pytest.fixture(scope="module")
def onnx() -> OnnxMiniLmEmbedder:
    embedder = get_embedder(EmbedSettings())
    assert isinstance(embedder, OnnxMiniLmEmbedder), "the default embedder runs on onnxruntime"
    return embedder


def test_onnx_agrees_with_torch(onnx: OnnxMiniLmEmbedder) -> None:
    pytest.importorskip("sentence_transformers", reason="needs the torch extra (make test installs it)")
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(minilm_path(), device="cpu")
    assert reference.max_seq_length == onnx.max_tokens == 256
    expected = reference.encode(PASSAGES, convert_to_numpy=True, normalize_embeddings=True)
    got = onnx.embed_texts(PASSAGES)
    cosine = (got * expected).sum(axis=1)
    # Measured on 205 NEETS passages: min 0.9999999 (an int8 export: min 0.972, mean 0.989).
    assert cosine.min() > 0.9999, f"ONNX vectors drifted from torch's: {cosine.round(6)}"
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5), "vectors are L2-normalised"


def test_padding_and_batch_order_do_not_change_vectors(onnx: OnnxMiniLmEmbedder) -> None:
    # Padding must be masked out of attention and of the mean: a short text alone and in a
    # batch padded to a 256-token neighbour gets the same vector, in the caller's order.
    alone = np.concatenate([onnx.embed_texts([text]) for text in PASSAGES])
    together = onnx.embed_texts(PASSAGES)
    assert (alone * together).sum(axis=1).min() > 0.9999
    assert onnx.embed_queries([PASSAGES[0]]).shape == (1, 384)


def test_collection_name_changes_with_the_embedder(settings: Settings) -> None:
    onnx_id, torch_id = embedder_id("minilm"), embedder_id("minilm-torch")
    assert onnx_id == get_embedder(EmbedSettings()).id
    # Same vectors (test_onnx_agrees_with_torch), so one collection: torch-built stores stay valid.
    assert onnx_id == torch_id == "minilm-l6-v2"
    names = {settings.collection_name(embedder_id(spec)) for spec in ("minilm", "clip:/m/clip", "st:/m/e5")}
    assert len(names) == 3, "other embedders' vectors never mix with MiniLM's"
    assert settings.collection_name(embedder_id("minilm", dimensions=256)) not in names


def test_damaged_or_missing_model_file_is_one_line(tmp_path: Path) -> None:
    tokenizer = Path(minilm_path()) / "tokenizer.json"
    damaged = tmp_path / "model.onnx"
    shutil.copy(MINILM_ONNX, damaged)
    with damaged.open("r+b") as handle:
        handle.seek(4096)
        handle.write(b"\0" * 16)
    with pytest.raises(EmbedderUnavailable, match="is damaged .*reinstall manualrag") as err:
        OnnxMiniLmEmbedder(damaged, MINILM_ONNX_SHA256, tokenizer, "x")
    assert "\n" not in str(err.value)
    with pytest.raises(EmbedderUnavailable, match="is missing"):
        OnnxMiniLmEmbedder(tmp_path / "gone.onnx", MINILM_ONNX_SHA256, tokenizer, "x")


def test_default_embedder_runs_without_torch() -> None:
    # The lean install has no torch: loading and running the default must not import it.
    script = (
        "import sys; from manualrag.settings import EmbedSettings; from rag.embedders import get_embedder; "
        "v = get_embedder(EmbedSettings()).embed_texts(['check the pump']); "
        "heavy = ('torch', 'transformers', 'sentence_transformers'); "
        "print(v.shape, sorted(m for m in heavy if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(1, 384) []", done.stdout


@pytest.mark.parametrize(
    ("spec", "hidden", "extra"),
    [
        ("minilm-torch", "torch", "torch"),
        ("sentence-transformers:/models/st", "sentence_transformers", "torch"),
        ("clip:/models/clip", "transformers", "pixels"),
    ],
)
def test_missing_torch_extra_says_what_to_install(
    spec: str, hidden: str, extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, hidden, None)  # what an install without the extra looks like to import
    assert required_extra(spec) == extra
    with pytest.raises(EmbedderUnavailable) as err:
        get_embedder(EmbedSettings(model=spec, batch_size=7))
    message = str(err.value)
    assert "\n" not in message and f"needs {hidden}" in message
    assert f"scripts/setup.sh --extras {extra}" in message and f"make run EXTRAS={extra}" in message


def test_missing_easyocr_extra_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "easyocr", None)
    with pytest.raises(OcrUnavailable) as err:
        EasyOcrEngine(tmp_path / "easyocr")
    assert "\n" not in str(err.value) and "scripts/setup.sh --extras easyocr" in str(err.value)

    settings = Settings(_env_file=None)
    settings.ingest.ocr_engine = "easyocr"
    check = doctor.check_packages(settings)
    assert check.status == "fail" and "easyocr (not installed)" in check.detail
    assert check.fix.startswith("install the easyocr extra: scripts/setup.sh --extras easyocr"), check.fix


def test_doctor_packages_need_no_torch_for_the_default() -> None:
    check = doctor.check_packages(Settings(_env_file=None))
    assert check.status == "ok" and "onnxruntime" in check.detail and "torch" not in check.detail


def test_default_embedder_on_a_gpu_device_points_to_minilm_torch() -> None:
    with pytest.raises(EmbedderUnavailable, match="runs on the CPU .*MANUALRAG_EMBED__MODEL=minilm-torch"):
        get_embedder(EmbedSettings(device="cuda"))
