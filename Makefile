# The two commands of the README. Both set up what they need from nothing.
.PHONY: run test setup

STORE ?= data/store
MANUALS ?=
# Extras that need torch, comma-separated: torch (MiniLM on torch, sentence-transformers models),
# pixels (CLIP/SigLIP), easyocr; or all. The default install has none (no torch, no CUDA libraries).
EXTRAS ?=

# Set up, ingest the bundled sample manual (plus MANUALS=...), start the local model and the app.
run:
	scripts/setup.sh --model --extras "$(EXTRAS)"
	.venv/bin/manualrag ingest --store $(STORE) data/sample $(MANUALS)
	.venv/bin/manualrag serve --store $(STORE)

# Set up with every extra and run the whole test suite.
test:
	scripts/setup.sh --browser
	.venv/bin/python -m pytest $(PYTEST_ARGS)
