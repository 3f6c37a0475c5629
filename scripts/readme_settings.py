"""Rewrites the configuration table in README.md from the settings class.

    .venv/bin/python scripts/readme_settings.py
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from settings_table import rows  # noqa: E402

README = Path(__file__).resolve().parents[1] / "README.md"
START, END = "<!-- settings:start -->", "<!-- settings:end -->"

if __name__ == "__main__":
    text = README.read_text()
    table = "\n".join([START, *rows(), END])
    if "SETTINGS_TABLE" in text:
        text = text.replace("SETTINGS_TABLE", table)
    else:
        text = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: table, text, flags=re.S)
    README.write_text(text)
