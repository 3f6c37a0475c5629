"""The README stays true: its commands exist and its configuration table matches the settings."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from settings_table import rows  # noqa: E402


def test_settings_table_is_current() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [row for row in rows() if row not in readme]
    assert not missing, f"README's configuration table is stale; run scripts/readme_settings.py. Missing: {missing[:3]}"


def test_readme_commands_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    makefile = (ROOT / "Makefile").read_text()
    for target in ("run", "test"):
        assert f"make {target}" in readme and f"\n{target}:" in makefile, f"make {target} must be documented and defined"
    assert "make test" in (ROOT / ".ci" / "run").read_text(), "CI must run the README's test command"
