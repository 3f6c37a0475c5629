"""The app's flows in Streamlit's AppTest: the real ui/app.py over a real store and LLM servers.

Most answers come from the scripted OpenAI-format server, so which sources an answer
cites is known; one test goes through the real llama.cpp server with SmolLM2.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from uihelpers import Reply, all_text, ask, button, sign_in, switch_view, tiny_manual, wait_for

from manualrag.conversations import Conversations
from ui.owner import _TOKEN as OWNER_TOKEN

WIRING = "Show me the controller wiring diagram."
CITE_ALL = "The controller wiring is drawn in the diagram [1] [2] [3]."


def _db(store: Path) -> Conversations:
    return Conversations(store / "app.db")


def test_empty_library_says_what_to_do(make_app: Any, tmp_path: Path, fake_llm: Any) -> None:
    at = make_app(tmp_path / "empty-store", fake_llm.url).run()
    assert not at.exception, f"the app should start on an empty store, got {at.exception}"
    assert "No manuals yet" in all_text(at), "an empty library should say how to add manuals"
    assert at.chat_input[0].disabled, "there is nothing to ask about yet"


def test_answer_with_cited_figures_and_page_viewer(make_app: Any, store_copy: Path, fake_llm: Any) -> None:
    fake_llm.script = [Reply(CITE_ALL)]
    at = ask(make_app(store_copy, fake_llm.url).run(), WIRING)
    assert not at.exception and not at.error, f"the answer should render cleanly: {at.exception or at.error}"
    assistant = [m for m in at.chat_message if m.name == "assistant"]
    assert assistant, "an assistant message should follow the question"
    assert "The controller wiring is drawn in the diagram [1]" in all_text(at).replace("\\", "")
    assert len(at.image) >= 1, "the cited wiring diagram should show as a thumbnail under the answer"
    assert re.search(r"Figure 2-1, p\.2", all_text(at)), "the thumbnail is labelled 'Figure 2-1, p.2'"

    # Stored with its trace, first-token time included.
    turns = _db(store_copy).answers()
    assert len(turns) == 1 and turns[0].answer.citations, "the answer and its citations are stored"
    assert turns[0].first_token_at is not None and turns[0].first_token_at >= turns[0].asked_at

    # The thumbnail opens the figure large, with the words read inside it.
    at = button(at, "Figure 2-1, p.2").click().run()
    assert "Show it on the page" in all_text(at), "the large view offers the page"
    assert "MAIN BREAKER" in all_text(at), "the large view shows the labels read inside the figure"
    # ...and on its page, outlined; neighbouring pages are a click away.
    at = button(at, "Show it on the page").click().run()
    assert "Page 2 of 7" in all_text(at), f"the cited page should be shown:\n{all_text(at)}"
    assert "outlined in red" in all_text(at)
    at = button(at, "Next page").click().run()
    assert "Page 3 of 7" in all_text(at) and "The citation is on page 2" in all_text(at)
    at = button(at, "Previous page").click().run()
    assert "Page 2 of 7" in all_text(at)

    # Copy: the answer with its sources as plain text.
    copies = [c.value for c in at.code]
    assert any("Sources:" in c and "[1] p200-controller.pdf, p." in c for c in copies), copies


def test_follow_up_and_new_conversation_survive_a_restart(
    make_app: Any, store_copy: Path, fake_llm: Any
) -> None:
    fake_llm.script = [Reply(CITE_ALL), Reply("fuse F3 rating motor contactor"), Reply("It is 20 AMP [1].")]
    at = ask(make_app(store_copy, fake_llm.url).run(), WIRING)
    at = ask(at, "and which fuse protects it?")
    assert len([m for m in at.chat_message if m.name == "assistant"]) == 2, (
        "both answers stay in the conversation"
    )
    rewrite, answer = fake_llm.chats[1], fake_llm.chats[2]
    assert not rewrite.body.get("stream"), "a follow-up is first rewritten into a standalone query"
    prompt = str(answer.body["messages"])
    assert WIRING in prompt, "the earlier question reaches the follow-up's prompt"
    turns = _db(store_copy).answers()
    assert turns[0].query == "fuse F3 rating motor contactor", "the rewritten query is kept for review"
    cid = turns[0].conversation_id

    at = button(at, "New conversation").click().run()
    assert not at.chat_message and "Ask a question" in all_text(at), "a new conversation starts empty"

    # A reload (or a restarted server) finds the conversation again from the URL, in the same
    # browser: its owner token (a cookie in a real browser, tests/ui/test_privacy.py) comes along.
    token = at.session_state[OWNER_TOKEN]
    again = make_app(store_copy, fake_llm.url)
    again.session_state[OWNER_TOKEN] = token
    again.query_params["c"] = cid
    again.run()
    assert len([m for m in again.chat_message if m.name == "assistant"]) == 2, "the conversation survives"
    assert WIRING[:40] in all_text(again), "this browser's recent conversations list it"

    # Another browser (another token) gets "not found", neither the answers nor the list.
    other = make_app(store_copy, fake_llm.url)
    other.query_params["c"] = cid
    other.run()
    assert not other.chat_message, "another browser must not see the conversation"
    assert "Conversation not found" in all_text(other), "a foreign id reads as not found"
    assert WIRING[:40] not in all_text(other), "another browser must not list the conversation"


def test_a_too_long_question_is_refused(make_app: Any, store_copy: Path, fake_llm: Any) -> None:
    at = make_app(store_copy, fake_llm.url).run()
    at = ask(at, "fuse " * 900)
    assert "the question is 4,500 characters long; the limit is 4,000" in all_text(at), all_text(at)
    assert not at.chat_message, "nothing is asked"
    assert not [r for r in fake_llm.requests if r.method == "POST"], "the model never sees it"
    assert _db(store_copy).answers() == [], "no turn is saved"


def test_a_question_about_what_no_manual_mentions_says_so_at_once(
    make_app: Any, store_copy: Path, fake_llm: Any, monkeypatch: Any
) -> None:
    at = make_app(store_copy, fake_llm.url)
    monkeypatch.setenv("MANUALRAG_LLM__GROUNDING", "strict")  # as for the embedded model
    at = ask(at.run(), "Show me the wiring diagram of relay K99 in the Kestrel controller.")
    text = all_text(at)
    assert "The manuals I have do not contain the answer to this." in text
    assert "not in the manuals searched: K99, Kestrel" in text, text
    closest = [b.label.replace("\\", "").split(" ", 1)[1] for b in at.button if b.label.startswith("\\#")]
    assert len(closest) == len(set(closest)) == 3, f"one button per place, not a figure and its passage: {closest}"
    assert not [r for r in fake_llm.requests if r.method == "POST"], "the model is not asked"
    assert _db(store_copy).answers()[0].answer.not_covered == ["K99", "Kestrel"], "the reason is saved for review"
    at = switch_view(sign_in(at), "Review")
    at = at.segmented_control(key="review_mode").set_value("All answers").run()
    assert "The model was not asked: the question names what the manuals searched don't have: K99, Kestrel" in (
        all_text(at).replace("\\", "")), "the review desk says why"


def test_the_app_start_removes_stale_uploads(make_app: Any, store_copy: Path, fake_llm: Any) -> None:
    stale = store_copy / "uploads" / "5e1d.pdf"
    stale.parent.mkdir(exist_ok=True)  # the sample store's upload left the (empty) folder
    stale.write_bytes(b"%PDF-1.7 left by a crashed upload")
    at = make_app(store_copy, fake_llm.url).run()
    assert not at.exception and not stale.exists(), "the app removes uploads nobody is writing"


def test_real_llm_streams_an_answer(make_app: Any, sample_store: Path, smollm_url: str) -> None:
    """The real llama.cpp server: the answer grows token by token, is saved, and the page shows it."""
    from manualrag.engine import Engine
    from manualrag.settings import Settings
    from ui.jobs import AnswerJob

    at = make_app(sample_store, smollm_url)  # sets the environment the app reads
    settings = Settings(_env_file=None)
    conversations = _db(sample_store)
    cid = conversations.create("fault code", owner="a" * 64)
    job = AnswerJob(Engine(settings), conversations, cid, "What does fault code F07452 mean?", [], [])
    lengths = set()
    while not job.done:
        if job.text and not job.done:
            lengths.add(len(job.text))
        time.sleep(0.005)
    turn = conversations.turn(job.turn_id)  # type: ignore[arg-type]
    assert turn is not None and not turn.answer.error, f"SmolLM2 should answer: {turn and turn.answer.error}"
    assert len(lengths) >= 2, f"the text should arrive in pieces, saw lengths {sorted(lengths)}"
    assert turn.first_token_at is not None and turn.answer.messages and turn.answer.hits, "trace kept"

    at.session_state[OWNER_TOKEN] = "a" * 64  # the browser that asked
    at.query_params["c"] = cid
    at.run()
    shown = [m for m in at.chat_message if m.name == "assistant"]
    assert shown and not at.exception, "the saved answer is shown in its conversation"


def test_upload_good_bad_and_duplicate_files(make_app: Any, tmp_path: Path, fake_llm: Any) -> None:
    good = tiny_manual(
        tmp_path / "pump.pdf", "Bilge pump B7", ["The bilge pump B7 runs on 24 volts DC."]
    ).read_bytes()
    other = tiny_manual(tmp_path / "fan.pdf", "Fan F9", ["Fan F9 blades are cleaned monthly."]).read_bytes()
    store = tmp_path / "store"
    at = make_app(store, fake_llm.url, max_upload_mb="1").run()
    uploader = at.sidebar.file_uploader[0]
    uploader.set_value(
        [
            ("pump.pdf", good, "application/pdf"),
            ("notes.pdf", b"these are my notes, not a PDF", "application/pdf"),
            ("huge.pdf", b"%PDF-1.7\n" + b"0" * (1 << 20), "application/pdf"),
            ("broken.pdf", b"%PDF-1.7\n1 0 obj garbage", "application/pdf"),
            ("../../etc/fan.pdf", other, "application/pdf"),
        ]
    )
    at.run()
    text = all_text(at)
    assert "notes.pdf: not a PDF" in text, f"a non-PDF is refused by content:\n{text}"
    assert "huge.pdf: too large (1.0 MiB; the limit is 1.0 MiB)" in text, "the size limit is enforced"
    at = wait_for(
        at,
        lambda a: "broken.pdf:" in all_text(a) and "fan.pdf: added" in all_text(a),
        what="the queued uploads to finish",
    )
    text = all_text(at)
    assert "pump.pdf: added: 1 page, 1 text chunk, 0 figures" in text, (
        f"the good file is in, with counts:\n{text}"
    )
    assert re.search(r"broken\.pdf: (?!added)", text), "a corrupt PDF fails with its own message"
    names = sorted(p.name for p in (store / "manuals").iterdir())
    assert all(re.fullmatch(r"[0-9a-f]{64}\.pdf", n) for n in names), f"stored under generated names: {names}"
    assert not (store.parent / "etc").exists(), "an uploaded name is never used as a path"

    # The same file again, under another name: recognised.
    at.sidebar.file_uploader[0].set_value([("pump-copy.pdf", good, "application/pdf")])
    at.run()
    assert "already in the library as pump.pdf" in all_text(at), "a duplicate is recognised by content"
    # Another file under a name the library has: a technician may not replace a manual.
    newer = tiny_manual(
        tmp_path / "pump2.pdf", "Bilge pump B7 rev 2", ["B7 rev 2 runs on 12 volts."]
    ).read_bytes()
    at.sidebar.file_uploader[0].set_value([("pump.pdf", newer, "application/pdf")])
    at.run()
    assert "a different manual named pump.pdf is already in the library" in all_text(at)

    # Asked about at once.
    fake_llm.script = [Reply("It runs on 24 volts [1].")]
    at = ask(at, "What voltage does the bilge pump B7 use?")
    turn = _db(store).answers()[0]
    assert turn.answer.hits and turn.answer.hits[0].manual == "pump.pdf", "the new manual is searched at once"


def test_roles_are_enforced_in_the_handlers(make_app: Any, store_copy: Path, fake_llm: Any) -> None:
    at = make_app(store_copy, fake_llm.url).run()
    assert at.sidebar.radio(key="view").options == ["Ask", "Library"], "technicians see no staff views"
    at = switch_view(at, "Library")
    assert not [b for b in at.button if "Remove" in b.label], "technicians get no remove button"

    at = sign_in(at, "wrong password")
    assert "Wrong staff password" in all_text(at)
    assert "Review" not in at.sidebar.radio(key="view").options, "a wrong password grants nothing"

    at = sign_in(at)
    assert at.sidebar.radio(key="view").options == ["Ask", "Library", "Review", "Figures"]
    at = switch_view(at, "Library")
    at = button(at, "Remove").click().run()
    confirm = button(at, "Yes, remove it")

    # The session loses the staff role (signed out in another tab, or a crafted event
    # from a technician's page): the stale button still reaches the handler, which refuses.
    at.session_state["_manualrag_staff_by_password"] = False
    at = confirm.click().run()
    assert "Only support staff can remove manuals" in all_text(at)
    assert [m.name for m in _manuals(store_copy)] == ["p200-controller.pdf"], "nothing was removed"

    at = sign_in(at)
    at = switch_view(at, "Library")
    at = button(at, "Remove").click().run()
    at = button(at, "Yes, remove it").click().run()
    assert "Removed p200-controller.pdf" in all_text(at)
    assert _manuals(store_copy) == [], "staff can remove a manual"


def _manuals(store: Path) -> list[Any]:
    from manualrag.engine import Engine
    from manualrag.settings import Settings

    settings = Settings(_env_file=None)
    settings.store.path = store
    return Engine(settings).manuals()


def test_feedback_is_stored_and_reviewed(make_app: Any, store_copy: Path, fake_llm: Any) -> None:
    fake_llm.script = [Reply(CITE_ALL)]
    at = ask(make_app(store_copy, fake_llm.url).run(), WIRING)
    turn_id = _db(store_copy).answers()[0].id
    at.feedback(key=f"chat-rate-{turn_id}").set_value(0)  # thumbs down
    at.text_input(key=f"chat-comment-{turn_id}").input("shows the wrong fuse")
    at = button(at, "Save feedback").click().run()
    assert "review queue" in all_text(at)
    flagged = _db(store_copy).answers(flagged_only=True)
    assert [t.id for t in flagged] == [turn_id], "a thumbs down flags the answer"
    assert flagged[0].feedback[0].comment == "shows the wrong fuse"
    assert flagged[0].feedback[0].role == "technician", "the role is recorded by the server"

    at = switch_view(sign_in(at), "Review")
    text = all_text(at)
    assert "shows the wrong fuse" in text, "the queue shows the technician's comment"
    assert [c.value for c in at.code][0] == WIRING, "the query retrieval used is shown"
    assert at.dataframe, "the ranked hits with scores are shown"
    answer = _db(store_copy).answers()[0].answer
    shown = {row["Rank"]: (row["Source"], row["Cited"]) for _, row in at.dataframe[0].value.iterrows()}
    ids, cited = answer.source_ids, {c.hit_id for c in answer.citations}
    assert ids and shown == {
        n: (f"[{ids.index(h.id) + 1}]" if h.id in ids else "", "✓" if h.id in cited else "")
        for n, h in enumerate(answer.hits, 1)
    }, "each hit shows the source number the model saw it under, and whether the answer cites it"
    assert any("<source" in c.value or "[1]" in c.value for c in at.code), "the exact prompt is shown"
    assert len(at.image) >= 1 and "MAIN BREAKER" in text, "cited diagrams at full size, with their OCR text"

    # Staff resolve it with a thumbs up: it leaves the queue.
    at.feedback(key=f"review-rate-{turn_id}").set_value(1)
    at = button(at, "Save feedback").click().run()
    assert _db(store_copy).answers(flagged_only=True) == [], "the latest rating decides the queue"
    assert _db(store_copy).turn(turn_id).feedback[-1].role == "staff"  # type: ignore[union-attr]


def test_figure_gallery_for_staff(make_app: Any, sample_store: Path, fake_llm: Any) -> None:
    at = switch_view(sign_in(make_app(sample_store, fake_llm.url).run()), "Figures")
    text = all_text(at)
    assert len(at.image) == 2, "both figures of the sample manual are in the gallery"
    assert "Figure 2-1, p.2" in text and "Figure 3-1, p.4" in text
    assert "MAIN BREAKER" in text and "RESET BUTTON" in text, "OCR text is shown under each figure"


def test_hostile_text_is_rendered_inert(make_app: Any, store_copy: Path, fake_llm: Any) -> None:
    evil = (
        "Done [1]. ![x](http://evil.example/leak.png) <script>alert(1)</script> "
        "<img src=x onerror=alert(2)> [click](http://evil.example/) www.evil.example"
    )
    fake_llm.script = [Reply(f"The main breaker. {evil}")]
    # Quoted in the question too: an answer whose words neither a source nor the question
    # holds is withheld as invented (rag/answer.py), and this one must be shown; "main
    # breaker" (the diagram's) keeps it from being withheld as a restatement of the question.
    at = ask(make_app(store_copy, fake_llm.url).run(), f"{WIRING} Quote: {evil}")
    shown = [m.value for m in at.markdown if "Done" in m.value]
    assert len(shown) == 2, "the question and the answer are shown"
    for body in shown:
        assert "<script" not in body and "<img" not in body, "no tag reaches the page"
        assert "](" not in body.replace("\\](", ""), "no markdown link or image can form"
        assert "`www.evil.example`" in body, "bare URLs are shown as code, never linked"


def test_staff_reingest_with_progress(make_app: Any, tmp_path: Path, fake_llm: Any, embedder: Any) -> None:
    from manualrag.engine import Engine
    from manualrag.settings import Settings

    store = tmp_path / "store"
    settings = Settings(_env_file=None)
    settings.store.path = store
    engine = Engine(settings)
    engine.__dict__["embedder"] = embedder
    pdf = tiny_manual(tmp_path / "fan.pdf", "Fan F9", ["Fan F9 blades are cleaned monthly."])
    assert engine.ingest_upload(pdf.read_bytes(), "fan.pdf").status == "ingested"
    before = engine.manuals()[0]

    at = switch_view(sign_in(make_app(store, fake_llm.url).run()), "Library")
    at = button(at, "Re-ingest").click().run()
    at = wait_for(at, lambda a: "fan.pdf: replaced" in all_text(a), what="the re-ingest")
    after = engine.manuals()[0]
    assert after.ingest_id != before.ingest_id, "the manual was read again, as a new generation"
    assert after.sha256 == before.sha256 and after.chunks == before.chunks
