"""A small error hierarchy. Messages are for users: they say what went wrong and what to do.

Only the CLI and the UI catch ``ManualragError`` broadly, and they show ``str(err)``.
"""

from __future__ import annotations


class ManualragError(Exception):
    """Base of every error a user may see."""


class UnreadablePdf(ManualragError):
    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class OcrUnavailable(ManualragError):
    pass


class EmbedderUnavailable(ManualragError):
    pass


class UnreadableImage(ManualragError):
    """An image to embed (a search photo, a figure PNG) that cannot be opened."""


class StoreError(ManualragError):
    pass


class StoreBusy(StoreError):
    pass


class LlmUnavailable(ManualragError):
    pass


class ManualNotFound(ManualragError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no manual named {name!r} in the library (see `manualrag list`)")
        self.name = name


class QuestionTooLong(ManualragError):
    def __init__(self, chars: int, limit: int) -> None:
        super().__init__(
            f"the question is {chars:,} characters long; the limit is {limit:,}: "
            "ask about one thing, and quote only the lines that matter"
        )
