"""Staff-password guessing, limited per client address and for the whole app, kept in app.db.

A count kept in the browser session was no limit: a new tab started from zero. Here
every wrong password counts against its client address and against the app as a
whole (an attacker who rotates addresses, or many clients behind one proxy). After
``max_failures`` in a row an address waits ``lockout_s``, and each further lockout
doubles the wait, up to ``MAX_LOCKOUT_S``; the app as a whole locks after
``ALL_FACTOR`` times as many. The counts live in ``<store>/app.db``, so restarting the
app resets nothing. A correct password clears its address and the app-wide count.
The password never reaches this module, so it can never reach app.db or the log.
"""

from __future__ import annotations

import logging
import time
from contextlib import closing
from pathlib import Path

from manualrag.sqlite import connect

log = logging.getLogger(__name__)

ALL = "*"  # the key that counts every address's failures
ALL_FACTOR = 4  # the app locks after this many times the per-address limit
MAX_LOCKOUT_S = 3600.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS sign_in_failures (
    client TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    lockouts INTEGER NOT NULL,
    locked_until REAL NOT NULL
);
"""


class SignInThrottle:
    """Counts wrong staff passwords in ``path`` (app.db); every method opens its own connection,
    since sign-ins are rare and come from any of the app's threads."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        with closing(connect(path)) as conn:
            conn.executescript(SCHEMA)

    def wait_s(self, client: str) -> float:
        """Seconds before ``client`` may try a password again (0: now)."""
        now = time.time()
        with closing(connect(self.path)) as conn:
            rows = conn.execute(
                "SELECT locked_until FROM sign_in_failures WHERE client IN (?, ?)", (client, ALL)
            ).fetchall()
        return max([0.0] + [until - now for (until,) in rows])

    def failed(self, client: str, max_failures: int, lockout_s: float) -> float:
        """Count a wrong password from ``client``; the wait it now faces (0 if none)."""
        now = time.time()
        conn = connect(self.path)
        try:
            conn.execute("BEGIN IMMEDIATE")
            for key, limit in ((client, max_failures), (ALL, max_failures * ALL_FACTOR)):
                row = conn.execute(
                    "SELECT failures, lockouts FROM sign_in_failures WHERE client = ?", (key,)
                ).fetchone()
                failures, lockouts = (row[0] + 1, row[1]) if row else (1, 0)
                until = 0.0
                if failures >= limit:
                    wait = min(lockout_s * 2**lockouts, MAX_LOCKOUT_S)
                    until, failures, lockouts = now + wait, 0, lockouts + 1
                    who = "all addresses" if key == ALL else f"client {key}"
                    log.warning(
                        "staff sign-in locked for %.0f s after %d wrong passwords from %s (lockout %d)",
                        wait, limit, who, lockouts,
                    )  # fmt: skip
                conn.execute(
                    "INSERT INTO sign_in_failures (client, failures, lockouts, locked_until) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (client) DO UPDATE SET failures = excluded.failures, "
                    "lockouts = excluded.lockouts, locked_until = max(locked_until, excluded.locked_until)",
                    (key, failures, lockouts, until),
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        finally:
            conn.close()
        return self.wait_s(client)

    def succeeded(self, client: str) -> None:
        """A correct password: the address and the app start from zero again."""
        with closing(connect(self.path)) as conn:
            conn.execute("DELETE FROM sign_in_failures WHERE client IN (?, ?)", (client, ALL))
