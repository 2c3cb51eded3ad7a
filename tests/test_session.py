"""The conversation core (chatgui/session): its layer, the typed message and its stored form, the
history the model is sent (tool calls included), and the rules taken out of the Qt controllers."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_session_imports_only_common():
    code = ("import sys, chatgui.session, chatgui.session.stored; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'PySide6') or m.startswith('chatgui.')"
            " and not m.startswith(('chatgui.common', 'chatgui.session'))]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# ---- typed messages and their stored form ---------------------------------------------------

import json  # noqa: E402

import pytest  # noqa: E402

from chatgui.common.prompt import PromptMessage  # noqa: E402
from chatgui.common.errors import PromptTooLongError, WordedError  # noqa: E402
from chatgui.common.records import (Attachment, BackendKind, BranchPoint, Capabilities, FinishReason,  # noqa: E402
                                    ModelInfo, REMOTE_CAPABILITIES, ReplyMeta, TokenRecord)
from chatgui.common.runner import NoBackend  # noqa: E402
from chatgui.common.tools import ToolCall, ToolResult  # noqa: E402
from chatgui.common.types import GenerationStats, SamplingSettings  # noqa: E402
from chatgui.session import Chat, Message, Role, TextPart, UserMeta, tool_exchanges  # noqa: E402
from chatgui.session.branch import plan_branch, same_prompt  # noqa: E402
from chatgui.session.compare import compare_prompt, compared_reply, keep_compared  # noqa: E402
from chatgui.session.failures import (FailureKind, Refused, describe_failure, failure_notice,  # noqa: E402
                                      model_mismatch_text)
from chatgui.session.replay import ReplayPlan, ReplayRefusal, Refusal, plan_replay, replay_finished  # noqa: E402
from chatgui.session.replies import (assemble_reply_meta, finished_payload, read_finished,  # noqa: E402
                                     stopped_meta)
from chatgui.session.stored import chat_from_dict  # noqa: E402

CALL = ToolCall("abcDEF123", "add", {"a": 2, "b": 40})
RESULT = ToolResult("abcDEF123", "add", "forty-two exactly", False, 0.01)

OLD_CHAT = {  # as an earlier version wrote it: unknown keys, and known keys with values of the wrong type
    "id": "c1", "title": "Sums", "created": 1000.0, "updated": 1001.0, "system_prompt": None, "selected": {},
    "messages": [
        {"id": "u1", "role": "user", "content": "Add 2 and 40", "created": 1000.0, "parent_id": None,
         "meta": {"prompt": "[1] notes\n\nAdd 2 and 40", "knowledge": True, "from_the_future": [1, 2],
                  "attachments": [{"name": "notes.md", "path": "/n/notes.md", "kind": "text", "tokens": 3,
                                   "pages": None, "mode": "whole", "passages": 0, "error": None, "text": "n"}],
                  "sources": [{"number": 1, "path": "/n/notes.md", "text": "n"}]}},
        {"id": "a1", "role": "assistant", "content": "It is 42.", "created": 1000.5, "parent_id": "u1",
         "meta": {"model": "tiny", "seed": 7, "tokens": "many", "finish_reason": "function_call",
                  "sampling": {"temperature": 0.0}, "branch": {"from": "a0", "index": 2, "token_id": 5},
                  "tool_calls": [CALL.to_dict()], "tool_results": [RESULT.to_dict()], "tool_rounds": 1,
                  "a_new_field": {"x": 1}}},
    ]}


def test_an_old_chat_loads_typed_and_is_written_back_unchanged():
    chat = chat_from_dict(json.loads(json.dumps(OLD_CHAT)))
    user, reply = chat.messages["u1"], chat.messages["a1"]
    assert user.role is Role.USER and reply.role is Role.ASSISTANT
    assert isinstance(user.meta, UserMeta) and isinstance(reply.meta, ReplyMeta)
    assert user.user_meta.prompt.startswith("[1]") and user.user_meta.knowledge is True
    assert user.user_meta.attachments == [Attachment("notes.md", "/n/notes.md", "text", 3, text="n")]
    assert reply.reply_meta.tool_calls == [CALL] and reply.reply_meta.tool_results == [RESULT]
    assert reply.reply_meta.branch == BranchPoint("a0", 2, 5) and reply.reply_meta.seed == 7
    # values this version cannot read as their field stay as they were, and go back out
    assert reply.reply_meta.tokens is None and reply.reply_meta.finish_reason is None
    assert reply.reply_meta.extra == {"tokens": "many", "finish_reason": "function_call", "a_new_field": {"x": 1}}
    assert chat.to_dict() == OLD_CHAT


def test_the_database_keeps_unknown_meta_keys_both_ways(tmp_path):
    from chatgui.store import HistoryStore

    store = HistoryStore(tmp_path / "data")
    store.save(chat_from_dict(json.loads(json.dumps(OLD_CHAT))))
    row = store._r().execute("SELECT meta FROM messages WHERE id='a1'").fetchone()[0]
    assert json.loads(row) == OLD_CHAT["messages"][1]["meta"]        # the row holds the old form exactly
    again = HistoryStore(tmp_path / "data").load("c1")
    assert again.to_dict() == OLD_CHAT


def test_a_message_gets_the_meta_of_its_role():
    chat = Chat()
    user = chat.append("user", "hi", {"prompt": "p"})
    reply = chat.append(Role.ASSISTANT, "hello")
    assert user.user_meta.prompt == "p" and reply.reply_meta == ReplyMeta()
    with pytest.raises(TypeError):
        user.reply_meta
    with pytest.raises(TypeError):
        reply.user_meta
    with pytest.raises(ValueError):
        chat.append("tool", "a result is not a message of the chat")
    assert Message("m", "assistant", "x", 0.0).reply_meta == ReplyMeta()


def test_parts_list_text_files_calls_and_results():
    chat = chat_from_dict(json.loads(json.dumps(OLD_CHAT)))
    user, reply = chat.messages["u1"], chat.messages["a1"]
    assert user.parts == [TextPart("Add 2 and 40"), user.user_meta.attachments[0]]
    assert reply.parts == [CALL, RESULT, TextPart("It is 42.")]
    stopped = ReplyMeta(tool_calls=[CALL, ToolCall("x" * 9, "add", {})], tool_results=[RESULT])
    assert tool_exchanges(stopped) == [(CALL, RESULT), (stopped.tool_calls[1], None)]


def test_update_content_merges_only_the_fields_given():
    chat = Chat()
    chat.append("user", "q")
    reply = chat.append("assistant", "", ReplyMeta(model="m", partial=True))
    chat.update_content(reply.id, "done", ReplyMeta(finish_reason=FinishReason.STOP, tokens=2))
    assert reply.reply_meta.to_dict() == {"model": "m", "partial": True, "finish_reason": FinishReason.STOP,
                                          "tokens": 2}


# ---- what the model is sent -----------------------------------------------------------------

def tool_chat() -> tuple[Chat, Message]:
    chat = Chat(system_prompt="Be brief.")
    chat.append("user", "Add 2 and 40.")
    chat.append("assistant", "It is 42.", ReplyMeta(tool_calls=[CALL, ToolCall("unanswered", "add", {})],
                                                    tool_results=[RESULT], tool_rounds=1))
    return chat, chat.append("user", "And what did the tool say, word for word?")


def test_the_history_includes_earlier_calls_and_results():
    chat, question = tool_chat()
    messages = chat.to_messages_for_model(upto=question.id)
    assert [m.role for m in messages] == ["system", "user", "assistant", "tool", "assistant", "user"]
    assert messages[2] == PromptMessage.assistant("", [CALL])    # the unanswered call is left out
    assert messages[2].to_template()["tool_calls"] == [{"id": CALL.id, "type": "function",
                                                        "function": {"name": "add", "arguments": {"a": 2, "b": 40}}}]
    assert messages[3] == PromptMessage(Role.TOOL, "forty-two exactly", tool_call_id=CALL.id, name="add")
    assert messages[4] == PromptMessage.assistant("It is 42.")
    plain = chat.to_messages_for_model(upto=question.id, tool_turns=False)   # what the text-only path gets
    assert [m.role for m in plain] == ["system", "user", "assistant", "user"]
    assert all("forty-two" not in m.content for m in plain)


def test_a_question_sent_with_files_goes_as_its_prompt():
    chat = chat_from_dict(json.loads(json.dumps(OLD_CHAT)))
    assert chat.to_messages_for_model(upto="u1") == [PromptMessage.user("[1] notes\n\nAdd 2 and 40")]


TEMPLATES = ROOT / "tests" / "data" / "templates"


@pytest.mark.parametrize("file", ["qwen2.5-instruct.jinja", "llama-3.1-instruct.jinja",
                                  "mistral-nemo-instruct-2407.jinja", None])
def test_real_templates_show_the_earlier_result_to_the_next_question(file):
    """Issue 31: a second question after a tool call still sees the call and its result, in each
    family's own template (None: a template without tools, where they go as text)."""
    from chatgui.engine.chat_template import ChatTemplate
    from chatgui.engine.tool_calls import detect_format, render_with_tools
    from test_tool_calls import ADD

    source = (TEMPLATES / file).read_text() if file else None
    template = ChatTemplate(source, "<s>", "</s>")
    chat, question = tool_chat()
    fmt = detect_format(source)
    text = render_with_tools(template, chat.to_messages_for_model(upto=question.id), [ADD], fmt)
    assert "forty-two exactly" in text and '"a": 2' in text and text.rstrip().count("word for word") == 1
    before = render_with_tools(template, chat.to_messages_for_model(upto=question.id, tool_turns=False), [ADD], fmt)
    assert "forty-two exactly" not in before        # what the next turn was sent before this change


# ---- the rules taken out of the Qt controllers ------------------------------------------------

LOCAL = ModelInfo("tiny", "/m/tiny.gguf", "cpu", 4096)


def replied_chat(**reply) -> tuple[Chat, Message]:
    chat = Chat()
    chat.append("user", "q")
    tokens = [TokenRecord(i, f"t{i}", 0.5, ((i, f"t{i}", 0.5), (99, "alt", 0.25))) for i in range(4)]
    meta = ReplyMeta(sampling={"temperature": 0.7}, seed=5, model="tiny", model_path="/m/tiny.gguf",
                     model_sha256="ab" * 32, device="cpu", tokens=4, token_data=tokens, dropped_messages=2,
                     finish_reason=FinishReason.STOP)
    return chat, chat.append("assistant", "t0t1t2t3", meta.merge(ReplyMeta(**reply)))


def test_replay_plans_with_the_recorded_settings_and_says_why_not():
    chat, reply = replied_chat()
    plan = plan_replay(chat, reply.id, LOCAL, "ab" * 32)
    assert isinstance(plan, ReplayPlan) and plan.parent_id == reply.parent_id
    assert plan.sampling == {"temperature": 0.7, "seed": 5} and plan.meta.replay_of == reply.id
    assert plan.options == {"expect_sha256": "ab" * 32, "dropped_messages": 2} and not plan.unchecked_file
    assert plan_replay(chat, reply.id, None, None) == Refusal(ReplayRefusal.NO_MODEL, reply.reply_meta)
    assert plan_replay(chat, reply.id, LOCAL, "cd" * 32).why is ReplayRefusal.OTHER_MODEL_FILE
    remote = ModelInfo("m", "http://x", "remote", 4096, BackendKind.OPENAI, REMOTE_CAPABILITIES)
    assert plan_replay(chat, reply.id, remote, None).why is ReplayRefusal.NOT_LOCAL
    assert plan_replay(chat, reply.id, ModelInfo("t", "/m/t.gguf", "cuda", 4096), None).made_on == "cpu"
    stopped_chat, stopped = replied_chat(finish_reason=FinishReason.CANCELLED, reply_prefix_ids=[0, 1])
    plan = plan_replay(stopped_chat, stopped.id, LOCAL, None)
    assert plan.sampling["max_new_tokens"] == 2 and [t.id for t in plan.prefix] == [0, 1]
    stopped.reply_meta.model_sha256 = None
    plan = plan_replay(stopped_chat, stopped.id, LOCAL, "ab" * 32)
    assert plan.unchecked_file and "expect_sha256" not in plan.options
    broken_chat, broken = replied_chat(reply_prefix_ids=[0, 7])
    assert plan_replay(broken_chat, broken.id, LOCAL, None).why is ReplayRefusal.TOKENS_INCOMPLETE
    bare = Chat()
    bare.append("user", "q")
    unrecorded = bare.append("assistant", "a")
    assert plan_replay(bare, unrecorded.id, LOCAL, None).why is ReplayRefusal.NOT_RECORDED


def test_a_finished_replay_is_compared_and_recorded():
    chat, original = replied_chat()
    replay = chat.add_message(original.parent_id, "assistant", "t0t1X", ReplyMeta(replay_of=original.id))
    assert replay_finished(replay, original) is None                     # still being written
    replay.reply_meta.finish_reason = FinishReason.STOP
    result = replay_finished(replay, original)
    assert not result.identical and result.differs_at == 4 and replay.reply_meta.replay_identical is False
    replay.reply_meta.finish_reason = FinishReason.ERROR
    assert replay_finished(replay, original).failed


def test_branch_plans_a_reply_from_a_chosen_token():
    chat, reply = replied_chat()
    plan = plan_branch(chat, reply.id, 2, 99, {"temperature": 1.0})
    assert plan.meta.branch == BranchPoint(reply.id, 2, 99) and plan.meta.reply_prefix_ids == [0, 1, 99]
    assert plan.prefix[-1].forced and plan.prefix[-1].text == "alt" and plan.prefix[-1].prob == 0.25
    assert plan.options == same_prompt(reply.reply_meta) == {"dropped_messages": 2}
    assert plan_branch(chat, reply.id, 9, 99, {}) is None


def test_compare_keeps_answers_under_the_question():
    chat, reply = replied_chat()
    messages, question, parent = compare_prompt(chat, "")
    assert question == "q" and parent == reply.parent_id and messages[-1] == PromptMessage.user("q")
    messages, question, parent = compare_prompt(chat, "new one")
    assert parent is None and messages[-1].content == "new one" and len(messages) == 3
    side = compared_reply("Creative", ReplyMeta(model_path="/m/tiny.gguf", tokens=1), "answer", [], {"t": 1})
    kept = keep_compared(chat, None, "new one", [side], {"/m/tiny.gguf": "ef" * 32})
    assert kept[0].reply_meta.compare_preset == "Creative" and kept[0].reply_meta.model_sha256 == "ef" * 32
    assert chat.messages[kept[0].parent_id].content == "new one" and chat.active_path()[-1] is kept[0]


def test_reply_meta_is_assembled_for_a_file_and_for_a_server():
    stats = GenerationStats(prompt_tokens=10, generated_tokens=3, seed=4, time_to_first_token=0.123456,
                            tokens_per_second=12.34567, finish_reason=FinishReason.LENGTH,
                            extra={"usage_reported": True})
    local = assemble_reply_meta(LOCAL, 4096, stats, 5, SamplingSettings(seed=4), "ab" * 32)
    assert (local.model_path, local.model_sha256, local.tokens, local.backend) == ("/m/tiny.gguf", "ab" * 32, 5, None)
    assert local.time_to_first_token == 0.1235 and local.tokens_per_second == 12.346
    server = ModelInfo("m", "http://x", "remote", 4096, BackendKind.OPENAI, REMOTE_CAPABILITIES,
                       backend={"kind": "openai"})
    remote = assemble_reply_meta(server, 4096, stats, 5, SamplingSettings(), None)
    assert remote.model_path is None and remote.tokens == 3 and remote.usage_reported and remote.is_remote
    meta, text = read_finished(finished_payload(local, "hello"))
    assert text == "hello" and meta == local
    assert stopped_meta(ReplyMeta(tokens=9), 0).tokens == 9 and stopped_meta(ReplyMeta(tokens=9), 4).tokens == 4


def test_failures_have_a_kind_and_words():
    assert describe_failure(NoBackend(), True)[0] is FailureKind.NO_MODEL
    assert describe_failure(PromptTooLongError("too long"), False) == (FailureKind.PROMPT_TOO_LONG, "too long")
    assert describe_failure(WordedError("The server said no."), True) == (FailureKind.ERROR, "The server said no.")
    assert describe_failure(ValueError("bad"), False)[1] == "The reply could not start: bad"
    assert describe_failure(ValueError("bad"), True)[1] == "The reply failed: ValueError: bad"
    refused = Refused(FailureKind.MODEL_MISMATCH, model_mismatch_text("tiny", "ab" * 32, "cd" * 32))
    kind, words = describe_failure(refused, False)
    assert kind is FailureKind.MODEL_MISMATCH and "cdcdcdcdcdcd" in words and "tiny" in words
    assert failure_notice(FailureKind.NO_MODEL, "x") == ("no-model", "warning", "x")
    assert failure_notice(FailureKind.OOM, "x") == ("reply-error", "error", "x")
    assert failure_notice(FailureKind.PROMPT_TOO_LONG, "Too long.")[2].startswith("Too long. Your message was kept")
    assert FailureKind("oom") is FailureKind.OOM and Capabilities().replay


def test_a_misspelt_message_meta_field_fails_mypy(tmp_path):
    import importlib.util
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed")
    wrong = tmp_path / "uses_session.py"
    wrong.write_text(
        "from chatgui.session import Chat, UserMeta\n"
        "def read(chat: Chat, mid: str) -> object:\n"
        "    m = chat.messages[mid]\n"
        "    return (m.reply_meta.tokns, m.user_meta.atachments, m.reply_meta.tool_calls[0].nam)\n"
        "def make() -> UserMeta:\n"
        "    return UserMeta(promt='x')\n")
    result = subprocess.run([sys.executable, "-m", "mypy", "--no-error-summary", "--cache-dir",
                             str(ROOT / ".mypy_cache"), str(wrong)], cwd=ROOT, capture_output=True, text=True,
                            timeout=600)
    for name in ("tokns", "atachments", "nam", "promt"):
        assert name in result.stdout, result.stdout
    assert result.returncode == 1
