"""Prints the configuration table of the README from the Settings class itself.

    .venv/bin/python scripts/settings_table.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pydantic import BaseModel, SecretStr  # noqa: E402

from manualrag.settings import Settings  # noqa: E402


def rows() -> list[str]:
    out = ["| variable | default | what it does |", "| --- | --- | --- |"]
    for group, field in Settings.model_fields.items():
        model = field.annotation
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            continue
        defaults = getattr(Settings(_env_file=None), group)
        for name, sub in model.model_fields.items():
            value = getattr(defaults, name)
            shown = "(secret)" if isinstance(value, SecretStr) else ("" if value in (None, "") else str(value))
            desc = (sub.description or "").replace("|", "\\|")
            out.append(f"| `MANUALRAG_{group.upper()}__{name.upper()}` | `{shown}` | {desc} |")
    return out


if __name__ == "__main__":
    print("\n".join(rows()))
