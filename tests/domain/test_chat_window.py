import pytest

from domain.chat_window import (
    SUMMARY_QUESTION,
    ChatConfig,
    ChatWindow,
)
from domain.messages import ChatMessage


def talk(window: ChatWindow, n: int, start: int = 1) -> None:
    for i in range(start, start + n):
        window.add_user(f"question {i}")
        window.add_assistant(f"answer {i}")


def test_the_system_prompt_is_apart_and_roles_are_honoured() -> None:
    window = ChatWindow(ChatConfig(init_chat_role="developer", init_chat_prompt="Be brief.",
                                   user_role="human"))  # fmt: skip
    window.add_user("hi")
    assert window.history == [ChatMessage("human", "hi")]
    assert window.request() == [ChatMessage("developer", "Be brief."), ChatMessage("human", "hi")]


def test_the_language_prompt_goes_to_the_request_only() -> None:
    window = ChatWindow(ChatConfig(init_chat_prompt=""))
    window.add_user("bonjour")
    request = window.request("Please reply to my message in French.")
    assert request[-1] == ChatMessage("user", "Please reply to my message in French.")
    assert window.history == [ChatMessage("user", "bonjour")]


def test_without_compaction_the_oldest_whole_turns_are_evicted() -> None:
    window = ChatWindow(ChatConfig(chat_size=2, compact_history=False))
    talk(window, 3)
    assert window.after_reply() is None
    assert [m.content for m in window.history] == ["question 2", "answer 2", "question 3",
                                                   "answer 3"]  # fmt: skip
    assert window.system is not None


def test_a_compaction_covers_everything_before_the_latest_user_turn() -> None:
    window = ChatWindow(ChatConfig(chat_size=2))
    talk(window, 3)
    plan = window.after_reply()
    assert plan is not None
    transcript = plan.request[-1].content
    assert "question 1" in transcript and "answer 2" in transcript
    assert "question 3" not in transcript
    assert window.after_reply() is None  # one compaction at a time
    talk(window, 1, start=4)  # the conversation goes on meanwhile
    window.apply_summary(plan, "They asked two questions.")
    assert window.history == [
        ChatMessage("user", SUMMARY_QUESTION),
        ChatMessage("assistant", "They asked two questions."),
        ChatMessage("user", "question 3"), ChatMessage("assistant", "answer 3"),
        ChatMessage("user", "question 4"), ChatMessage("assistant", "answer 4"),
    ]  # fmt: skip
    assert window.user_turns == 2  # the summary pair is not a user turn


@pytest.mark.parametrize("failure", ["abandon", "empty"])
def test_a_failed_summary_leaves_the_history_unchanged(failure: str) -> None:
    window = ChatWindow(ChatConfig(chat_size=1))
    talk(window, 2)
    before = window.history
    plan = window.after_reply()
    assert plan is not None
    if failure == "abandon":
        window.abandon_summary(plan)
    else:
        window.apply_summary(plan, "   ")
    assert window.history == before
    assert not window.compacting
    assert window.after_reply() is not None  # and a later reply may try again


def test_a_summary_of_an_abandoned_plan_is_not_applied() -> None:
    window = ChatWindow(ChatConfig(chat_size=1))
    talk(window, 2)
    before = window.history
    stale = window.after_reply()
    assert stale is not None
    window.abandon_summary(stale)  # cancelled for a reply
    fresh = window.after_reply()
    window.apply_summary(stale, "A summary nobody waits for.")  # arrives anyway
    assert window.history == before and window.compacting
    assert fresh is not None
    window.apply_summary(fresh, "They talked.")
    assert window.history[1].content == "They talked."


def test_the_hard_cap_evicts_when_compaction_lags() -> None:
    window = ChatWindow(ChatConfig(chat_size=2))
    talk(window, 3)
    plan = window.after_reply()
    assert plan is not None
    talk(window, 3, start=4)  # six user turns > 2 x chat_size, summary still pending
    window.after_reply()
    assert window.user_turns == 2
    window.apply_summary(plan, "Early chat.")  # arrives late; newer turns survive
    assert [m.content for m in window.history][-4:] == ["question 5", "answer 5",
                                                       "question 6", "answer 6"]  # fmt: skip


def test_chat_size_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ChatConfig(chat_size=0)


def test_a_preview_is_the_request_the_user_message_would_make() -> None:
    window = ChatWindow(ChatConfig())
    talk(window, 1)
    preview = window.request("Please reply in French.", new_user_text="question 2")
    window.add_user("question 2")
    assert preview == window.request("Please reply in French.")
