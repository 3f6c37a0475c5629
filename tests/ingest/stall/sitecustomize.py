"""Loaded by every Python process started with this folder on PYTHONPATH (tests/ingest/test_stall.py).

With MANUALRAG_TEST_STALL=1, a page worker of the ingest pool hangs forever on its
first page, as a worker stuck in a hostile PDF or a wedged OCR call would. Only pool
workers run ``_parse_page_in_worker``: the parent process is untouched.
"""

import os

if os.environ.get("MANUALRAG_TEST_STALL") == "1":
    import time

    import ingest.pipeline as pipeline

    def _stall(number: int) -> object:
        while True:
            time.sleep(60)

    pipeline._parse_page_in_worker = _stall
