"""Staff-password guessing limits (manualrag/throttle.py) on a real app.db."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from manualrag.throttle import ALL_FACTOR, MAX_LOCKOUT_S, SignInThrottle


def test_lockouts_back_off_exponentially_and_survive_a_restart(tmp_path: Path) -> None:
    throttle = SignInThrottle(tmp_path / "app.db")
    for _ in range(2):
        assert throttle.failed("10.0.0.1", 3, 100.0) == 0, "below the limit: no wait"
    first = throttle.failed("10.0.0.1", 3, 100.0)
    assert 99 < first <= 100, f"the third wrong password locks for lockout_s, got {first}"
    assert throttle.wait_s("10.0.0.2") == 0, "another address is not locked by this one"

    again = SignInThrottle(tmp_path / "app.db")  # a restarted app
    assert again.wait_s("10.0.0.1") > 99, "a restart does not lift the lock"
    _expire(again, "10.0.0.1")
    for _ in range(2):
        again.failed("10.0.0.1", 3, 100.0)
    second = again.failed("10.0.0.1", 3, 100.0)
    assert 199 < second <= 200, f"the second lockout doubles the wait, got {second}"

    again.succeeded("10.0.0.1")
    assert again.wait_s("10.0.0.1") == 0, "a correct password clears the address"


def test_the_whole_app_locks_when_many_addresses_guess(tmp_path: Path) -> None:
    throttle = SignInThrottle(tmp_path / "app.db")
    for n in range(2 * ALL_FACTOR - 1):
        throttle.failed(f"10.0.1.{n}", 2, 30.0)  # each address stays under its own limit of 2
    assert throttle.wait_s("10.0.9.9") == 0
    throttle.failed("10.0.2.1", 2, 30.0)
    assert throttle.wait_s("10.0.9.9") > 29, "the app-wide count locks every address"


def test_waits_are_capped(tmp_path: Path) -> None:
    throttle = SignInThrottle(tmp_path / "app.db")
    throttle.failed("a", 1, 10_000.0)
    assert throttle.wait_s("a") <= MAX_LOCKOUT_S


def test_a_lockout_is_logged_without_the_password(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    throttle = SignInThrottle(tmp_path / "app.db")
    with caplog.at_level(logging.WARNING, logger="manualrag.throttle"):
        throttle.failed("10.0.0.7", 1, 60.0)
    (record,) = [r for r in caplog.records if "locked" in r.getMessage()]
    assert "10.0.0.7" in record.getMessage() and "60 s" in record.getMessage(), record.getMessage()


def _expire(throttle: SignInThrottle, client: str) -> None:
    """Move ``client``'s lock into the past, as if lockout_s had gone by."""
    with sqlite3.connect(throttle.path) as db:
        db.execute("UPDATE sign_in_failures SET locked_until = 0 WHERE client = ?", (client,))
