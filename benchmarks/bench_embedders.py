"""Embedding speed, memory and storage: MiniLM on onnxruntime (default) vs MiniLM on torch vs
CLIP ViT-B/32 vs SigLIP base, on this machine.

    .venv/bin/python benchmarks/bench_embedders.py [--threads 2] [--texts 64] [--images 32]
        [--models DIR] [--figures DIR] [--neets-store STORE] [--specs minilm,minilm-torch]

--specs picks embedders (default: all four; the torch ones need the torch and pixels extras).

No CLIP or SigLIP weights can be downloaded here, so both are built in code with the
real architectures (openai/clip-vit-base-patch32: ViT-B/32 at 224 px, 12-layer 512-wide
text tower, 77 tokens; google/siglip-base-patch16-224: ViT-B/16 at 224 px, 12-layer
768-wide text tower, 64 tokens), randomly initialised and saved to --models; they are
then loaded through ``clip:<folder>`` / ``siglip:<folder>`` like a downloaded model.
Random weights cost the same arithmetic as trained ones, so speed and memory hold.

Each embedder is measured in a fresh process (peak RSS is that process's maximum).
Texts are 160-word passages of the NEETS manual (cut to 77 / 64 tokens by the short
text towers, 256 by MiniLM); images are the figure PNGs in --figures, else NEETS pages
rendered at 150 dpi. --neets-store times the embed stage of a real NEETS ingest (every
record's text, and every figure image for the pixel models). Storage is measured in a
real store: 1,000 figures written through Store.add / Store.add_images, per dimension.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

NEETS = ROOT.parent / "shared/manuals/neets_part_04.pdf"
ARCHS = ("clip-vit-b32", "siglip-base-p16-224")
# (embedder, stored dimensions, pixel vector per figure): native sizes and truncations.
STORAGE_ROWS = [
    ("minilm", 384, False), ("minilm", 256, False),
    ("clip-vit-b32", 512, True), ("clip-vit-b32", 256, True),
    ("siglip-base", 768, True), ("siglip-base", 256, True),
    ("voyage-multimodal-3", 1024, True), ("voyage-multimodal-3.5", 512, True), ("voyage-multimodal-3.5", 256, True),
]


# -- building the random-weight folders -----------------------------------------------------------


def _tokenizer(max_length: int, clip: bool):  # type: ignore[no-untyped-def]
    """A word-level tokenizer over MiniLM's vocabulary: real English gives real token counts."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    from rag.embedders import minilm_path

    words = [w for w in (Path(minilm_path()) / "vocab.txt").read_text().split("\n") if w and not w.startswith("[")]
    special = ["<pad>", "<unk>", "<|startoftext|>", "<|endoftext|>"]
    vocab = {w: i for i, w in enumerate(special + sorted(set(words) - set(special)))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    template = "<|startoftext|> $A <|endoftext|>" if clip else "$A <|endoftext|>"
    tok.post_processor = processors.TemplateProcessing(
        single=template, special_tokens=[("<|startoftext|>", 2), ("<|endoftext|>", 3)]
    )
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>",
                                   bos_token="<|startoftext|>", eos_token="<|endoftext|>", model_max_length=max_length)
    return fast, len(vocab)


def build(arch: str, folder: Path) -> None:
    import torch
    import transformers as tf

    torch.manual_seed(0)
    if arch == "clip-vit-b32":
        tokenizer, vocab = _tokenizer(77, clip=True)
        # CLIPConfig's defaults are ViT-B/32's; only the vocabulary is ours.
        config = tf.CLIPConfig(text_config={"vocab_size": vocab, "eos_token_id": 3, "bos_token_id": 2, "pad_token_id": 0})
        model = tf.CLIPModel(config)
        processor = tf.CLIPImageProcessor()  # 224 px resize + centre crop, as the real checkpoint
    else:
        tokenizer, vocab = _tokenizer(64, clip=False)
        # SiglipConfig's defaults are siglip-base-patch16-224's; only the vocabulary is ours.
        config = tf.SiglipConfig(text_config={"vocab_size": vocab, "eos_token_id": 3, "bos_token_id": 2, "pad_token_id": 0})
        model = tf.SiglipModel(config)
        processor = tf.SiglipImageProcessor()  # 224 x 224
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


# -- inputs ----------------------------------------------------------------------------------------


def passages(n: int, pdf: Path = NEETS, words: int = 160) -> list[str]:
    import pymupdf

    text: list[str] = []
    with pymupdf.open(pdf) as doc:
        for page in doc:
            text.extend(page.get_text().split())
            if len(text) > n * words * 2:
                break
    chunks = [" ".join(text[i : i + words]) for i in range(0, len(text) - words, words)]
    return (chunks * (n // max(len(chunks), 1) + 1))[:n]


def images(n: int, figures: Path | None, out: Path, pdf: Path = NEETS) -> list[Path]:
    if figures is not None:
        found = sorted(figures.rglob("*.png"))
        if found:
            return (found * (n // len(found) + 1))[:n]
    import pymupdf

    paths = []
    with pymupdf.open(pdf) as doc:
        for number in list(range(doc.page_count))[10 : 10 + n] or range(doc.page_count):
            path = out / f"page{number + 1}.png"
            doc[number].get_pixmap(dpi=150).save(path)
            paths.append(path)
    return (paths * (n // len(paths) + 1))[:n]


# -- one embedder, in its own process -----------------------------------------------------------------


def measure(spec: str, threads: int, n_texts: int, n_images: int, figures: Path | None,
            neets_store: Path | None) -> dict[str, object]:
    from manualrag.settings import EmbedSettings
    from rag.embedders import get_embedder

    started = time.perf_counter()
    embedder = get_embedder(EmbedSettings(model=spec, batch_size=32))
    if "torch" in sys.modules:  # the ONNX embedder sets its own threads (the cores, at most 4)
        sys.modules["torch"].set_num_threads(threads)
    out: dict[str, object] = {"spec": spec.split(":")[0] if ":" in spec else spec, "id": embedder.id,
                              "dim": embedder.dim, "max_tokens": getattr(embedder, "max_tokens", None),
                              "load_s": round(time.perf_counter() - started, 2)}
    texts = passages(n_texts)
    embedder.embed_texts(texts[:4])  # warm-up
    # Wall time is what a user waits; CPU time (all threads) also holds on a shared, busy machine.
    t0, c0 = time.perf_counter(), time.process_time()
    embedder.embed_texts(texts)
    out["texts_per_s"] = round(len(texts) / (time.perf_counter() - t0), 1)
    out["texts_per_cpu_s"] = round(len(texts) / (time.process_time() - c0), 1)
    queries = ["What size fuse protects the wiper motor circuit?"] * 8
    t0 = time.perf_counter()
    latencies = []
    for q in queries:
        q0 = time.perf_counter()
        embedder.embed_queries([q])
        latencies.append(time.perf_counter() - q0)
    out["query_ms"] = round((time.perf_counter() - t0) / len(queries) * 1000, 1)
    out["query_ms_best"] = round(min(latencies) * 1000, 1)  # the least disturbed by other work
    out["torch_imported"] = "torch" in sys.modules
    if embedder.image_input:
        with tempfile.TemporaryDirectory() as tmp:
            pics = images(n_images, figures, Path(tmp))
            embedder.embed_images(pics[:2])
            t0, c0 = time.perf_counter(), time.process_time()
            embedder.embed_images(pics)
            out["images_per_s"] = round(len(pics) / (time.perf_counter() - t0), 2)
            out["images_per_cpu_s"] = round(len(pics) / (time.process_time() - c0), 2)
    if neets_store is not None:
        out["neets_embed_stage_s"] = neets_embed_stage(embedder, neets_store)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return out


def neets_embed_stage(embedder, store_path: Path) -> float:  # type: ignore[no-untyped-def]
    """What ingest's embed stage costs for NEETS with this embedder: its records' texts and figure images."""
    from ingest.pipeline import embed_figure_images, embed_records
    from rag.library import Library

    library = Library(store_path / "library.db")
    (collection, *_) = library.collections()
    (manual,) = library.manuals(collection)
    records = library.records_of(manual.ingest_id)
    t0 = time.perf_counter()
    embed_records(embedder, records)
    embed_figure_images(embedder, records, store_path)
    return round(time.perf_counter() - t0, 1)


# -- storage --------------------------------------------------------------------------------------------


def storage(dims: list[tuple[str, int, bool]], figures: int = 1000) -> list[dict[str, object]]:
    """Bytes a store grows by for ``figures`` figures: words vector, plus a pixel vector for pixel models."""
    import numpy as np

    from manualrag.settings import Settings
    from manualrag.types import ManualInfo, Record
    from rag.store import Store

    rows = []
    rng = np.random.default_rng(0)
    caption = "Figure 3-11. Wiring diagram of the motor controller. Labels: MAIN BREAKER, CONTACTOR K1, " \
              "OVERLOAD RELAY, MOTOR M1, FUSE F3 20 AMP, TERMINAL TB1. The wiring layout is shown below."
    for name, dim, pixels in dims:
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(_env_file=None)
            settings.store.path = Path(tmp) / "store"
            store = Store(settings, f"bench-{name}-{dim}")
            before, chroma_before = _size(settings.store.path), _size(settings.store.path / "chroma")
            gen = store.begin("m.pdf")
            records = [Record(id=f"{gen[:12]}-f{i:05d}", manual="m.pdf", page=i // 2 + 1, kind="figure",
                              text=caption, figure=f"Figure {i}", caption=caption,
                              image=f"figures/{gen}/p{i}-f1.png", bbox=(50.0, 60.0, 500.0, 400.0))
                       for i in range(figures)]
            vectors = rng.normal(size=(figures, dim)).astype(np.float32)
            store.add(gen, records, vectors)
            if pixels:
                store.add_images(gen, records, rng.normal(size=(figures, dim)).astype(np.float32))
            store.commit(ManualInfo(name="m.pdf", sha256="x", ingest_id=gen, pdf_path="manuals/x.pdf"))
            store.library.close()
            del store
            import gc

            gc.collect()
            chroma = _size(settings.store.path / "chroma") - chroma_before
            total = _size(settings.store.path) - before
            vectors_per_figure = 2 if pixels else 1
            rows.append({"embedder": name, "dim": dim, "vectors_per_figure": vectors_per_figure,
                         "raw_float32_mb": round(figures * vectors_per_figure * dim * 4 / 1e6, 2),
                         "chroma_mb": round(chroma / 1e6, 2), "store_total_mb": round(total / 1e6, 2)})
    return rows


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


# -- main ----------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads (2: the 2-core target)")
    parser.add_argument("--texts", type=int, default=64)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--models", type=Path, help="keep the random-weight folders here (default: a temp folder)")
    parser.add_argument("--figures", type=Path, help="a folder of figure PNGs (e.g. STORE/figures)")
    parser.add_argument("--neets-store", type=Path, help="a store holding NEETS: time the ingest embed stage")
    parser.add_argument("--skip-storage", action="store_true")
    parser.add_argument("--storage-only", action="store_true", help="only the storage table (a minute)")
    parser.add_argument("--specs", default="minilm,minilm-torch,clip,siglip",
                        help="comma-separated: minilm, minilm-torch, clip, siglip (default: all)")
    # Internal: the per-process steps.
    parser.add_argument("--build", nargs=2, metavar=("ARCH", "DIR"), help=argparse.SUPPRESS)
    parser.add_argument("--measure", metavar="SPEC", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.build:
        build(args.build[0], Path(args.build[1]))
        return
    if args.measure:
        print(json.dumps(measure(args.measure, args.threads, args.texts, args.images, args.figures,
                                 args.neets_store)))
        return

    if args.storage_only:
        print(json.dumps({"storage_per_1000_figures": storage(STORAGE_ROWS)}, indent=2))
        return
    with tempfile.TemporaryDirectory() as tmp:
        models = args.models or Path(tmp)
        wanted = args.specs.split(",")
        specs = [spec for spec in ("minilm", "minilm-torch") if spec in wanted]
        for arch in ARCHS:
            if arch.split("-")[0] not in wanted:
                continue
            folder = models / arch
            if not (folder / "config.json").exists():
                subprocess.run([sys.executable, __file__, "--build", arch, str(folder)], check=True)
            specs.append(f"{'clip' if arch.startswith('clip') else 'siglip'}:{folder}")
        results = []
        for spec in specs:
            argv = [sys.executable, __file__, "--measure", spec, "--threads", str(args.threads),
                    "--texts", str(args.texts), "--images", str(args.images)]
            if args.figures:
                argv += ["--figures", str(args.figures)]
            if args.neets_store:
                argv += ["--neets-store", str(args.neets_store)]
            done = subprocess.run(argv, check=True, capture_output=True, text=True)
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(json.dumps(results[-1]), flush=True)
    out: dict[str, object] = {"cpu_count": os.cpu_count(), "threads": args.threads,
                              "load_avg_1m_at_end": round(os.getloadavg()[0], 2), "embedders": results}
    if not args.skip_storage:
        out["storage_per_1000_figures"] = storage(STORAGE_ROWS)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
