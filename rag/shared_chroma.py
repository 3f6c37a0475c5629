"""One embedded Chroma folder, several processes: `manualrag serve` and `manualrag ingest`.

Measured with chromadb 1.5.9 (tests/test_processes.py): a ``PersistentClient`` loads a
collection's vector index into memory once and never looks at the files again. After
another process adds records, this process's ``count()`` includes them (that is SQLite)
but its vector searches don't: unfiltered queries miss them and a query or ``get``
filtered to them fails with "Error finding id". Worse, if this process then writes, it
saves its stale index over the files and the other process's vectors are lost for good.

Writers already take turns on the store's write lock. The rest is here: each write
bumps a counter in the library; a process that finds the counter moved since it last
looked drops Chroma's cached client for the folder and opens a new one, which loads
the index from the files. Writers hold ``chroma.lock`` exclusively while they change
the files and a reload holds it shared, so a reload never reads a half-written index.
"""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rag.library import Library

COUNTER = "chroma_writes"


def forget_cached_client(folder: Path) -> None:
    """Make the next ``PersistentClient(folder)`` in this process load the folder afresh.

    chromadb keeps one client system per folder for the whole process and offers no
    reset for one folder (``clear_system_cache`` drops every store's). Clients already
    open keep the system they hold, so searches in flight finish on the old index.
    """
    from chromadb.api.shared_system_client import SharedSystemClient

    target = folder.resolve()
    systems = SharedSystemClient._identifier_to_system
    for key in [k for k in list(systems) if k and Path(k).resolve() == target]:
        systems.pop(key, None)


class ProcessSync:
    """Tells a Store when other processes changed its embedded Chroma folder."""

    def __init__(self, root: Path, library: Library) -> None:
        self.library = library
        self._lock_path = root / "chroma.lock"
        self._seen = library.counter(COUNTER)
        self.mutex = threading.Lock()  # one reload at a time among this process's threads

    def moved(self) -> int | None:
        """The counter's value if another process wrote since this one last looked, else None."""
        now = self.library.counter(COUNTER)
        return None if now == self._seen else now

    def seen(self, value: int) -> None:
        self._seen = value

    @contextmanager
    def _flock(self, mode: int) -> Iterator[None]:
        with open(self._lock_path, "a+") as handle:
            fcntl.flock(handle, mode)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextmanager
    def reloading(self) -> Iterator[None]:
        """Around loading the index from the files: never while a writer is changing them."""
        with self._flock(fcntl.LOCK_SH):
            yield

    @contextmanager
    def changing(self) -> Iterator[None]:
        """Around a write to Chroma: other processes reload only after it is complete."""
        try:
            with self._flock(fcntl.LOCK_EX):
                yield
        finally:
            # Even after a failed write (it may have changed some files). Bumped after the
            # lock is released: a thread of this process waiting to reload holds ``mutex``
            # while it waits for the lock, so taking the mutex first would deadlock.
            with self.mutex:
                self._seen = self.library.bump(COUNTER)
