"""Logs for the CLI and the app: JSON lines or text, structured fields, secrets masked.

An event is a short dotted name plus fields (``ingest.stage stage=parse manual=a.pdf``,
``search retrieve_ms=41 hits=8``), so a log shipper can aggregate timings without
parsing prose: ``event(log, "search", retrieve_ms=41)``. Plain ``log.info(...)``
calls with ``extra={...}`` come out the same way.

Masking happens in the handler's formatter, on the finished line: whatever reaches
the output (a message, a field, a URL with a password in it, an exception's text)
passes through it, so a secret setting can't leak by a path nobody thought of.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, SecretStr

from manualrag.settings import Settings

MASK = "***"
# Secrets shorter than this are not masked: replacing every "ab" would wreck the log,
# and such a value protects nothing anyway.
MIN_SECRET_CHARS = 4
# Libraries that log every HTTP request or index step at INFO: kept at WARNING unless DEBUG.
NOISY = ("httpx", "httpcore", "urllib3", "openai", "chromadb", "sentence_transformers", "streamlit.runtime")
# user:password@ in any URL (a Chroma server or LLM endpoint configured with credentials).
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]+:)[^/\s@]+@")
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_HANDLER_TAG = "_manualrag_handler"


@dataclass(frozen=True)
class LogConfig:
    """What ``apply`` needs; picklable, so ingest worker processes log the same way."""

    format: str
    level: str
    file: str | None
    secrets: tuple[str, ...]


def secrets_of(settings: Settings) -> tuple[str, ...]:
    """Every non-trivial secret value in the settings, found by type (SecretStr), not by name."""
    found: list[str] = []

    def walk(model: BaseModel) -> None:
        for name, field in type(model).model_fields.items():
            value = getattr(model, name)
            if isinstance(value, SecretStr):
                found.append(value.get_secret_value())
            elif field.annotation is SecretStr and isinstance(value, str):
                found.append(value)  # assigned in code as a plain string: still a secret
            elif isinstance(value, BaseModel):
                walk(value)

    walk(settings)
    return tuple(sorted({s for s in found if len(s) >= MIN_SECRET_CHARS}, key=len, reverse=True))


class Redactor:
    def __init__(self, secrets: tuple[str, ...]) -> None:
        forms: set[str] = set()
        for secret in secrets:
            # The same secret as it appears inside JSON or a repr() of a string.
            forms.update({secret, json.dumps(secret)[1:-1], repr(secret)[1:-1]})
        ordered = sorted((f for f in forms if len(f) >= MIN_SECRET_CHARS), key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(f) for f in ordered)) if ordered else None

    def __call__(self, text: str) -> str:
        text = _URL_PASSWORD.sub(lambda m: m.group("head") + MASK + "@", text)
        return self._pattern.sub(MASK, text) if self._pattern else text


def _fields(record: logging.LogRecord) -> dict[str, object]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, event, pid, then the event's fields."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
            "pid": record.process,
        }
        for key, value in _fields(record).items():
            payload[key if key not in payload else f"field_{key}"] = value
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return self.redact(json.dumps(payload, default=str, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    """``LEVEL logger: event key=value ...`` for a person reading a terminal."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = _fields(record)
        if fields:
            extra = " ".join(
                f"{k}={json.dumps(v, default=str, ensure_ascii=False)}" for k, v in fields.items()
            )
            head, _, tail = line.partition("\n")  # fields before any traceback
            line = f"{head} {extra}" + (f"\n{tail}" if tail else "")
        return self.redact(line)


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (a test's capture, a redirected stream)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, value: IO[str]) -> None:
        pass


_active: LogConfig | None = None


def configure(settings: Settings, default_level: str = "WARNING", stream: IO[str] | None = None) -> LogConfig:
    """Set up the root logger from the settings; returns the config for worker processes."""
    log = settings.log
    config = LogConfig(
        format=log.format,
        level=log.level or default_level,
        file=str(Path(log.file).expanduser().absolute()) if log.file else None,
        secrets=secrets_of(settings),
    )
    apply(config, stream)
    return config


def apply(config: LogConfig, stream: IO[str] | None = None) -> None:
    """Install (or replace) manualrag's handlers on the root logger."""
    global _active
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _HANDLER_TAG, False)]:
        root.removeHandler(handler)
        handler.close()
    redact = Redactor(config.secrets)
    formatter: logging.Formatter = JsonFormatter(redact) if config.format == "json" else TextFormatter(redact)
    handlers: list[logging.Handler] = [logging.StreamHandler(stream) if stream else _Stderr()]
    if config.file:
        Path(config.file).parent.mkdir(parents=True, exist_ok=True)
        # Append mode: lines from ingest worker processes interleave whole, not torn.
        handlers.append(logging.FileHandler(config.file, mode="a", encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(formatter)
        setattr(handler, _HANDLER_TAG, True)
        root.addHandler(handler)
    level = logging.getLevelName(config.level)
    root.setLevel(level)
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.DEBUG if level <= logging.DEBUG else logging.WARNING)
    _active = config


def active() -> LogConfig | None:
    """The config set up in this process, if any (handed to ingest worker processes)."""
    return _active


def apply_in_worker(config: LogConfig | None) -> None:
    """In a spawned worker process: log like the parent. Inline (same process): nothing to do."""
    if config is not None and multiprocessing.parent_process() is not None:
        apply(config)


def event(logger: logging.Logger, name: str, level: int = logging.INFO, /, **fields: object) -> None:
    """Log an event with structured fields (names that clash with LogRecord's get a prefix)."""
    if not logger.isEnabledFor(level):
        return
    safe = {(k if k not in _STANDARD else f"field_{k}"): v for k, v in fields.items()}
    logger.log(level, name, extra=safe, stacklevel=2)


# Query parameters that carry credentials (?api_key=, ?token=, ?sig=, ?X-Amz-Credential=...).
_SECRET_PARAM = re.compile(r"key|token|secret|pass|pwd|auth|sig|credential|session|code", re.IGNORECASE)


def safe_url(url: str) -> str:
    """A URL fit to print: any user:password@ part dropped, secret-looking query values masked."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # not a URL a client could use: show none of it
        return "(an invalid URL)"
    if parts.username or parts.password:
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host  # an IPv6 address keeps its brackets
        parts = parts._replace(netloc=host + (f":{port}" if port else ""))
    parts = parts._replace(fragment="")
    if parts.query:
        pairs = [p.partition("=") for p in parts.query.split("&")]
        parts = parts._replace(
            query="&".join(k + (s and ("=***" if _SECRET_PARAM.search(k) else s + v)) for k, s, v in pairs)
        )
    return urlunsplit(parts)


def ms(seconds: float | None) -> float | None:
    """Seconds to milliseconds, rounded for logs."""
    return None if seconds is None else round(seconds * 1000, 1)
