"""Tiny randomly initialised CLIP / SigLIP / SigLIP 2 folders, saved like real checkpoints.

No such weights can be downloaded here, so tests build a model of the real
architecture with a few thousand parameters, ``save_pretrained`` it with a
tokenizer (a WordLevel vocabulary of manual words) and an image processor, and
load it through ``clip:<folder>`` / ``siglip:<folder>``: the code path a user's
downloaded folder takes. Random weights give meaningless similarities between
different inputs, so tests check shapes, norms, batching and exact matches only.
"""

from __future__ import annotations

from pathlib import Path

WORDS = (
    "the a of and to in on is for with figure table panel pump motor valve wiring diagram fuse relay "
    "coil contactor breaker overload display reset button status led fault code controller terminal "
    "front main amp chapter safety power supply replace check"
).split()
SPECIAL = ["[PAD]", "[UNK]", "<|startoftext|>", "<|endoftext|>"]

# Sizes: large enough that MANUALRAG_EMBED__DIMENSIONS (>= 32) can truncate them.
HIDDEN = 64
PROJECTION = 48


def _tokenizer(max_length: int):  # type: ignore[no-untyped-def]
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(SPECIAL + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    # CLIP pools at the end-of-text token, so the tokenizer must add it, as CLIP's own does.
    tok.post_processor = processors.TemplateProcessing(
        single="<|startoftext|> $A <|endoftext|>",
        special_tokens=[("<|startoftext|>", 2), ("<|endoftext|>", 3)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", bos_token="<|startoftext|>",
        eos_token="<|endoftext|>", model_max_length=max_length,
    )


def tiny_model(folder: Path, kind: str = "clip", max_length: int = 16) -> Path:
    """Build and save a tiny ``kind`` ("clip", "siglip", "siglip2") model folder; returns it."""
    import torch
    import transformers as tf

    torch.manual_seed(0)
    text = dict(vocab_size=len(SPECIAL) + len(WORDS), hidden_size=HIDDEN, intermediate_size=96,
                num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=max_length,
                pad_token_id=0, bos_token_id=2, eos_token_id=3)
    vision = dict(hidden_size=HIDDEN, intermediate_size=96, num_hidden_layers=2, num_attention_heads=2,
                  image_size=32, patch_size=8)
    if kind == "clip":
        model = tf.CLIPModel(tf.CLIPConfig(text_config=text, vision_config=vision, projection_dim=PROJECTION))
        processor = tf.CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    elif kind == "siglip":
        model = tf.SiglipModel(tf.SiglipConfig(text_config=text, vision_config=vision))
        processor = tf.SiglipImageProcessor(size={"height": 32, "width": 32})
    elif kind == "siglip2":
        vision2 = {k: v for k, v in vision.items() if k != "image_size"} | {"num_patches": 16}
        model = tf.Siglip2Model(tf.Siglip2Config(text_config=text, vision_config=vision2))
        processor = tf.Siglip2ImageProcessor(patch_size=8, max_num_patches=16)
    else:
        raise ValueError(kind)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    _tokenizer(max_length).save_pretrained(folder)
    return folder


def photo(path: Path, seed: int, size: tuple[int, int] = (120, 90)) -> Path:
    """A random-coloured picture with a few shapes: distinct per seed."""
    import random

    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    img = Image.new("RGB", size, tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(img)
    for _ in range(4):
        x0, y0 = rng.randrange(size[0] // 2), rng.randrange(size[1] // 2)
        draw.rectangle((x0, y0, x0 + size[0] // 3, y0 + size[1] // 3), fill=tuple(rng.randrange(256) for _ in range(3)))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def figures_manual(path: Path) -> Path:
    """Three pages: safety text, a vector wiring diagram (Figure 2-1), a raster front panel (Figure 3-1)."""
    from pdfgen import ManualBuilder

    m = ManualBuilder()
    m.text_page("Chapter 1 Safety", ["Disconnect power before opening the controller cabinet."])
    m.vector_figure_page("Chapter 2 Wiring", "The wiring layout is shown in figure 2-1.",
                         ["MAIN BREAKER", "CONTACTOR K1", "MOTOR M1"], "Figure 2-1. Controller wiring diagram.")
    m.raster_figure_page("Chapter 3 Panel", "The display panel is shown in figure 3-1; code F07452 is an overload.",
                         ["DISPLAY", "RESET BUTTON"], "Figure 3-1. Front panel.")
    return m.save(path)
