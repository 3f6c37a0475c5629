"""The chat model: one OpenAI-format client for the embedded model and any compatible endpoint.

Every failure leaves this module as ``LlmUnavailable`` with one line that says what
to set or start (never the API key, never a traceback): the CLI and the UI show it
as is, next to the retrieved sources.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import openai
from openai.types.chat import ChatCompletionMessageParam

from manualrag.errors import LlmUnavailable
from manualrag.logs import safe_url
from manualrag.settings import Settings
from rag.local_llm import QWEN_CODER_1_5B, EmbeddedLlm, StatusCallback

Message = dict[str, Any]  # an OpenAI chat message: {"role": ..., "content": str | list of parts}

# Servers word context overflow differently: OpenAI "maximum context length",
# llama.cpp "exceed context window", vLLM "longer than the maximum model length".
_CONTEXT_OVERFLOW = re.compile(
    r"context[ _](length|window)|maximum context|max(imum)? model length|too many tokens|"
    r"exceeds? (the )?(context|max)",
    re.IGNORECASE,
)
# Local servers accept any key, but the client refuses to start without one.
_NO_KEY = "no-key"


def _noop(message: str) -> None:
    pass


class ChatModel:
    """``stream`` and ``complete`` over ``openai.OpenAI``; starts the embedded server on first use."""

    def __init__(
        self,
        *,
        base_url: str = "",
        model: str = "",
        api_key: str = "",
        timeout_s: float = 120.0,
        max_retries: int = 2,
        max_tokens: int = 400,
        temperature: float = 0.1,
        server: EmbeddedLlm | None = None,
    ) -> None:
        if not base_url and server is None:
            raise ValueError("ChatModel needs a base_url or an embedded server")
        self._base_url = base_url.rstrip("/")
        self._model = model or (server.alias if server else "")
        self._api_key = api_key
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.server = server
        self._client: openai.OpenAI | None = None
        self._client_url = ""
        self._lock = threading.Lock()

    # -- where it talks to ------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self.server is not None:
            return self.server.base_url if self.server.running else "the local model server"
        return safe_url(self._base_url)  # shown in messages, saved in app.db: never credentials

    @property
    def model(self) -> str:
        return self._model

    @property
    def needs_start(self) -> bool:
        """True when the next call will first load the embedded model (seconds)."""
        return self.server is not None and not self.server.running

    def start(self, on_status: StatusCallback = _noop) -> float:
        """Load the embedded model now (also restarts it if it died); seconds spent."""
        return self.server.start(on_status) if self.server is not None else 0.0

    def _get_client(self) -> openai.OpenAI:
        self.start()
        with self._lock:
            url = self.server.base_url if self.server is not None else self._base_url
            if self._client is None or url != self._client_url:
                if self._client is not None:
                    self._client.close()
                self._client = openai.OpenAI(
                    base_url=url,
                    api_key=self._api_key or _NO_KEY,
                    # A dead host fails fast; a slow CPU model may think for a while
                    # between tokens, which the read timeout allows.
                    timeout=openai.Timeout(self.timeout_s, connect=min(10.0, self.timeout_s)),
                    max_retries=self.max_retries,
                    # The embedded server is on 127.0.0.1: never through a user's proxy.
                    http_client=openai.DefaultHttpxClient(trust_env=False)
                    if self.server is not None
                    else None,
                )
                self._client_url = url
            if not self._model:
                self._model = self._first_model(self._client)
            return self._client

    def _first_model(self, client: openai.OpenAI) -> str:
        # Convenience for single-model servers (llama.cpp, vLLM, Ollama): MODEL may stay empty.
        try:
            models = [m.id for m in client.models.list()]
        except (openai.OpenAIError, ValueError, TypeError, AttributeError) as err:
            raise LlmUnavailable(
                f"MANUALRAG_LLM__MODEL is empty and {self.base_url} did not list its models "
                f"({self._explain(err)}): set MANUALRAG_LLM__MODEL"
            ) from err
        if not models:
            raise LlmUnavailable(f"{self.base_url} serves no models: set MANUALRAG_LLM__MODEL")
        return str(models[0])

    # -- calls -------------------------------------------------------------------------------

    def stream(
        self, messages: Sequence[Message], *, max_tokens: int | None = None, temperature: float | None = None
    ) -> Iterator[str]:
        """The answer's text, piece by piece as the model writes it."""
        client = self._get_client()
        mark = self.server.log_mark() if self.server is not None else 0
        events = 0
        received = False
        finished = False
        try:
            # `with`: a reader that stops early (the user pressed stop) closes the
            # connection, and llama.cpp stops generating.
            with client.chat.completions.create(
                model=self._model,
                messages=_params(messages),
                max_tokens=max_tokens or self.max_tokens,
                temperature=self.temperature if temperature is None else temperature,
                stream=True,
            ) as chunks:
                for chunk in chunks:
                    events += 1
                    if not chunk.choices:  # usage-only chunks some servers send at the end
                        continue
                    choice = chunk.choices[0]
                    text = choice.delta.content if choice.delta is not None else None
                    if text:
                        received = True
                        yield text
                    if choice.finish_reason:
                        finished = True
        except Exception as err:  # translated at this one boundary
            self._drop_connections()
            raise LlmUnavailable(self._explain(err)) from err
        if not received and not finished:
            # llama-cpp-python answers 200 and then drops the stream when the prompt
            # overflows its window; its log says why.
            self._drop_connections()
            raise LlmUnavailable(self._empty_stream_message(mark, events))

    def complete(
        self, messages: Sequence[Message], *, max_tokens: int | None = None, temperature: float | None = None
    ) -> str:
        """The whole answer at once."""
        client = self._get_client()
        try:
            resp = client.chat.completions.create(
                model=self._model,
                messages=_params(messages),
                max_tokens=max_tokens or self.max_tokens,
                temperature=self.temperature if temperature is None else temperature,
            )
            content = resp.choices[0].message.content
        except Exception as err:  # translated at this one boundary
            self._drop_connections()
            raise LlmUnavailable(self._explain(err)) from err
        if not isinstance(content, str):
            raise LlmUnavailable(self._malformed())
        return content

    def _drop_connections(self) -> None:
        # A server that broke off a reply may leave a kept-alive connection that fails
        # the next request: start the next call on a fresh pool.
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def close(self) -> None:
        """Close the client and stop the embedded server, if any."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
        if self.server is not None:
            self.server.close()

    # -- messages ----------------------------------------------------------------------------

    def _explain(self, err: BaseException) -> str:
        """One line for the user: what failed and which setting or server to look at."""
        url = self.base_url
        retried = f" after {self.max_retries} retries" if self.max_retries else ""
        if isinstance(err, openai.APITimeoutError):
            message = (
                f"the LLM at {url} did not answer within {self.timeout_s:g} s{retried}: "
                "raise MANUALRAG_LLM__TIMEOUT_S or use a faster model"
            )
        elif isinstance(err, openai.APIConnectionError):
            if self.server is not None:
                message = (
                    f"the local model server at {url} stopped answering{retried} "
                    f"(log {self.server.log_path}): ask again to restart it"
                )
            else:
                message = (
                    f"cannot connect to the LLM at {url}{retried}: start that server, or set "
                    "MANUALRAG_LLM__BASE_URL to a running OpenAI-compatible endpoint"
                )
        elif isinstance(err, openai.AuthenticationError | openai.PermissionDeniedError):
            # The server's own text may echo part of the key: never shown.
            message = (
                f"the LLM at {url} refused the API key (HTTP {err.status_code}): set MANUALRAG_LLM__API_KEY"
            )
        elif isinstance(err, openai.NotFoundError):
            message = (
                f"the LLM at {url} has no model {self._model!r} (HTTP 404): set MANUALRAG_LLM__MODEL to a "
                "model it serves, and check that MANUALRAG_LLM__BASE_URL ends with /v1"
            )
        elif isinstance(err, openai.APIStatusError) and _CONTEXT_OVERFLOW.search(_server_text(err)):
            message = (
                f"the question and its sources were too long for the model's context window "
                f"({_server_text(err)[:160]}): ask a shorter question, lower "
                "MANUALRAG_LLM__PROMPT_TOKENS, or raise MANUALRAG_LLM__CONTEXT_TOKENS"
            )
        elif isinstance(err, openai.RateLimitError):
            message = f"the LLM at {url} is rate-limiting requests (HTTP 429){retried}: wait and ask again"
        elif isinstance(err, openai.APIStatusError) and err.status_code >= 500:
            message = (
                f"the LLM at {url} failed with HTTP {err.status_code}{retried}: check that server's log"
                + (f" ({self.server.log_path})" if self.server is not None else "")
            )
        elif isinstance(err, openai.APIStatusError):
            message = (
                f"the LLM at {url} rejected the request (HTTP {err.status_code}: "
                f"{_server_text(err)[:160] or 'no detail'})"
            )
        elif isinstance(err, openai.APIResponseValidationError | ValueError | TypeError | AttributeError):
            message = self._malformed()
        elif isinstance(err, openai.APIError) and _CONTEXT_OVERFLOW.search(err.message):
            message = (
                "the question and its sources were too long for the model's context window: "
                "lower MANUALRAG_LLM__PROMPT_TOKENS or raise MANUALRAG_LLM__CONTEXT_TOKENS"
            )
        elif isinstance(err, openai.APIError):
            message = f"the LLM at {url} reported an error: {err.message}"
        else:
            message = f"the LLM at {url} failed: {type(err).__name__}: {err}"
        if self._base_url:  # the client's own text may quote the URL it was given, credentials included
            message = message.replace(self._base_url, url)
        return self._one_line(message)

    def _malformed(self) -> str:
        return (
            f"the LLM at {self.base_url} sent a reply that is not an OpenAI chat completion: "
            "check that MANUALRAG_LLM__BASE_URL points at an OpenAI-compatible /v1 API"
        )

    def _empty_stream_message(self, log_mark: int, events: int) -> str:
        overflow = False
        if self.server is not None:
            # The server logs its exception just after dropping the stream: give it a moment.
            deadline = time.monotonic() + 1.0
            while not overflow and time.monotonic() < deadline:
                overflow = bool(_CONTEXT_OVERFLOW.search(self.server.tail_log(40, since=log_mark)))
                time.sleep(0.05)
        if overflow:
            return (
                "the question and its sources were too long for the local model's context window: "
                "lower MANUALRAG_LLM__PROMPT_TOKENS or raise MANUALRAG_LLM__CONTEXT_TOKENS"
            )
        if self.server is not None:
            return f"the local model server broke off its reply (log {self.server.log_path}): ask again"
        if events == 0:  # not even one SSE event: not a chat-completions stream at all
            return self._malformed()
        return f"the LLM at {self.base_url} ended its reply without any text: try again, or check that server"

    def _one_line(self, text: str) -> str:
        if self._api_key:
            text = text.replace(self._api_key, "***")
        return " ".join(text.split())[:400]


def _params(messages: Sequence[Message]) -> list[ChatCompletionMessageParam]:
    # Our messages are plain dicts (prompts are data); the SDK types them as TypedDicts.
    return cast("list[ChatCompletionMessageParam]", list(messages))


def _server_text(err: openai.APIStatusError) -> str:
    """The server's error message, wherever it put it."""
    body = err.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
        if isinstance(body.get("detail"), str):
            return str(body["detail"])
    return err.message or ""


def resolve_chat_model(settings: Settings, runtime_dir: Path) -> ChatModel:
    """The configured endpoint, or the embedded llama.cpp server (loaded on first use).

    Starting is lazy so that the app opens at once and a question answered without
    the LLM (nothing retrieved) never waits for it; call ``.start()`` to load eagerly.
    """
    llm = settings.llm
    common: dict[str, Any] = {
        "timeout_s": llm.timeout_s,
        "max_retries": llm.max_retries,
        "max_tokens": llm.max_tokens,
        "temperature": llm.temperature,
    }
    if llm.base_url:
        return ChatModel(
            base_url=llm.base_url, model=llm.model, api_key=llm.api_key.get_secret_value(), **common
        )
    bundled = QWEN_CODER_1_5B if llm.model_path is None else None
    model_path = llm.model_path or llm.models_dir / QWEN_CODER_1_5B.filename
    server = EmbeddedLlm(
        model_path.expanduser().absolute(),
        runtime_dir.absolute(),
        context_tokens=llm.context_tokens,
        threads=llm.threads,
        start_timeout_s=llm.start_timeout_s,
        bundled=bundled,
    )
    # The embedded server serves one model under its alias, whatever llm.model says.
    return ChatModel(server=server, **common)
