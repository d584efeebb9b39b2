import pytest

from domain.chat_window import (
    MESSAGE_OVERHEAD_TOKENS,
    ChatConfig,
    ChatWindow,
    TokenBudget,
    estimated_tokens,
)
from domain.messages import ChatMessage
from domain.notes import ACK, INTRO, Notes


def talk(window: ChatWindow, n: int, start: int = 1, words: int = 1) -> None:
    """`n` exchanges; each answer is `words` words long."""
    for i in range(start, start + n):
        window.add_user(f"question {i}")
        window.add_assistant(" ".join([f"answer {i}"] + ["more"] * (words - 1)))
        window.after_reply()


def count_words(window: ChatWindow) -> None:
    """The model's count, as a fake: one token a word."""
    for text in window.uncounted():
        window.counted(text, len(text.split()))


def contents(messages: list[ChatMessage]) -> list[str]:
    return [m.content for m in messages]


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
    assert window.plan_compaction() is None
    assert contents(window.history) == ["question 2", "answer 2", "question 3", "answer 3"]
    assert window.system is not None


def test_past_chat_size_the_older_half_leaves_in_one_summary() -> None:
    window = ChatWindow(ChatConfig(chat_size=4))
    talk(window, 4)
    assert window.plan_compaction() is None  # within the window
    talk(window, 1, start=5)
    plan = window.plan_compaction()
    assert plan is not None
    transcript = plan.request[-1].content
    assert "Summary so far: none." in transcript
    assert "User: question 1" in transcript and "Assistant: answer 3" in transcript
    assert "question 4" not in transcript  # chat_size // 2 turns stay as they are
    assert plan.said == ("question 1", "question 2", "question 3")
    assert window.plan_compaction() is None  # one summary at a time


def test_a_summary_lands_after_the_turns_that_stay_with_the_users_own_words() -> None:
    window = ChatWindow(ChatConfig(chat_size=2))
    window.add_user("My name is Maria.")
    window.add_assistant("Hello Maria.")
    talk(window, 2, start=2)
    plan = window.plan_compaction()
    assert plan is not None
    talk(window, 1, start=4)  # the conversation goes on meanwhile
    assert window.apply_summary(plan, "They said hello and asked a question.")
    notes = Notes(("My name is Maria.", "question 2"), "They said hello and asked a question.")
    assert window.notes == notes
    assert contents(window.history) == [
        "question 3", "answer 3", "question 4", "answer 4", notes.text(), ACK,
    ]  # fmt: skip
    assert notes.text() == (
        f"{INTRO} The user said: «My name is Maria.» «question 2» Summary: They said hello and "
        "asked a question."
    )
    assert window.user_turns == 2  # the notes are not a user turn


def test_the_next_summary_merges_the_summary_and_the_user_keeps_every_word() -> None:
    window = ChatWindow(ChatConfig(chat_size=2))
    talk(window, 3)
    first = window.plan_compaction()
    assert first is not None
    window.apply_summary(first, "Two questions were asked.")
    talk(window, 2, start=4)
    second = window.plan_compaction()
    assert second is not None
    transcript = second.request[-1].content
    assert "Summary so far: Two questions were asked." in transcript
    assert INTRO not in transcript  # the notes go in once, as the summary so far
    assert "question 3" in transcript and "question 5" not in transcript
    window.apply_summary(second, "Four questions were asked.")
    assert window.notes.said == ("question 1", "question 2", "question 3", "question 4")
    assert [m.content for m in window.history if m.content.startswith(INTRO)] == [
        window.notes.text()
    ]


@pytest.mark.parametrize("failure", ["abandon", "empty"])
def test_a_failed_summary_leaves_the_history_and_the_earlier_notes(failure: str) -> None:
    window = ChatWindow(ChatConfig(chat_size=1))
    talk(window, 2)
    first = window.plan_compaction()
    assert first is not None
    window.apply_summary(first, "The user lives in Lisbon.")
    talk(window, 1, start=3)
    before, notes = window.history, window.notes
    plan = window.plan_compaction()
    assert plan is not None
    if failure == "abandon":
        window.abandon_summary(plan)
    else:
        assert not window.apply_summary(plan, "   ")
    assert window.history == before and window.notes == notes
    assert not window.compacting
    assert window.plan_compaction() is not None  # and it may be tried again


def test_a_summary_of_an_abandoned_plan_is_not_applied() -> None:
    window = ChatWindow(ChatConfig(chat_size=1))
    talk(window, 2)
    before = window.history
    stale = window.plan_compaction()
    assert stale is not None
    window.abandon_summary(stale)  # cancelled for a reply
    fresh = window.plan_compaction()
    assert not window.apply_summary(stale, "A summary nobody waits for.")  # arrives anyway
    assert window.history == before and window.compacting
    assert fresh is not None
    assert window.apply_summary(fresh, "They talked.")
    assert window.notes.summary == "They talked."


def test_turns_dropped_while_a_summary_is_late_leave_the_users_words() -> None:
    window = ChatWindow(ChatConfig(chat_size=2))
    talk(window, 3)
    plan = window.plan_compaction()
    assert plan is not None
    for n in range(4, 10):  # the summary still pending
        talk(window, 1, start=n)
        assert window.user_turns <= 4  # 2 x chat_size
    assert window.notes.said[:3] == ("question 1", "question 2", "question 3")
    window.apply_summary(plan, "Early chat.")  # arrives late; newer turns survive
    assert contents(window.history)[-4:-2] == ["question 9", "answer 9"]
    assert window.notes.summary == "Early chat."
    assert len(set(window.notes.said)) == len(window.notes.said)  # nobody's words twice


def test_a_long_summary_is_cut_at_a_sentence() -> None:
    window = ChatWindow(ChatConfig(chat_size=1))
    talk(window, 2)
    plan = window.plan_compaction()
    assert plan is not None
    window.apply_summary(plan, "A short start. " + "Then it rambles on " * 100)
    assert window.notes.summary == "A short start."


def test_chat_size_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ChatConfig(chat_size=0)


def test_a_preview_is_the_request_the_user_message_would_make() -> None:
    window = ChatWindow(ChatConfig())
    talk(window, 1)
    preview = window.request("Please reply in French.", new_user_text="question 2")
    window.add_user("question 2")
    assert preview == window.request("Please reply in French.")


# -- the token budget --------------------------------------------------------------------------


def test_an_uncounted_text_is_estimated_on_the_safe_side() -> None:
    window = ChatWindow(ChatConfig(init_chat_prompt=""), TokenBudget(1000))
    window.add_user("hello there")  # 2 words; estimated from its 11 bytes
    assert window.tokens(window.history) == estimated_tokens("hello there") + 8
    assert estimated_tokens("hello there") >= 2
    count_words(window)
    assert window.uncounted() == []
    assert window.tokens(window.history) == 2 + MESSAGE_OVERHEAD_TOKENS


def test_long_replies_start_a_summary_before_chat_size_is_reached() -> None:
    budget = TokenBudget(1000)  # a summary starts past 600 tokens, leaves at most 300
    window = ChatWindow(ChatConfig(chat_size=30, init_chat_prompt=""), budget)
    talk(window, 3, words=150)
    count_words(window)
    assert window.plan_compaction() is None  # 3 x ~170 tokens: under 600
    talk(window, 1, start=4, words=150)
    count_words(window)
    plan = window.plan_compaction()
    assert plan is not None
    transcript = plan.request[-1].content
    assert "question 3" in transcript  # 300 tokens hold only the newest turn
    assert "question 4" not in transcript


def test_every_request_fits_the_budget_when_no_summary_comes() -> None:
    budget = TokenBudget(400)
    window = ChatWindow(ChatConfig(chat_size=30), budget)
    for n in range(1, 40):
        talk(window, 1, start=n, words=60)
        count_words(window)
        window.plan_compaction()  # planned, never applied: the summary lags forever
        request = window.request(new_user_text="and now?")
        assert window.tokens(request) <= budget.prompt
        assert request[-1].content == "and now?" and request[-2].content.startswith("answer")
    assert window.request()[0] == window.system  # the system prompt is never dropped


def test_the_notes_are_left_out_of_a_request_last() -> None:
    budget = TokenBudget(300)
    window = ChatWindow(ChatConfig(chat_size=1, init_chat_prompt=""), budget)
    talk(window, 2)
    plan = window.plan_compaction()
    assert plan is not None
    window.apply_summary(plan, "They said hello.")
    talk(window, 1, start=3, words=100)
    count_words(window)
    request = window.request(new_user_text="What is my name?")
    assert contents(request)[0] == "question 2"  # oldest first
    short = window.request(new_user_text=" ".join(["word"] * 60))  # ~150 tokens estimated
    assert any(INTRO in m.content for m in short)
    assert not any(m.content == "question 2" for m in short)
    assert window.tokens(short) <= budget.prompt


def test_a_user_message_that_alone_overflows_keeps_its_end() -> None:
    budget = TokenBudget(600)  # the default system prompt is ~380 tokens estimated
    window = ChatWindow(ChatConfig(), budget)
    request = window.request(new_user_text="blah " * 2000 + "what time is it?")
    assert request[-1].content.endswith("what time is it?")
    assert window.tokens(request) <= budget.prompt


def test_the_summariser_request_fits_the_budget() -> None:
    budget = TokenBudget(600)
    window = ChatWindow(ChatConfig(chat_size=1), budget)
    talk(window, 2, words=300)  # no counts: estimates, about 2.5 times the words
    plan = window.plan_compaction()
    assert plan is not None
    assert window.tokens(plan.request) <= budget.prompt
    assert "question 1" in plan.request[-1].content  # the oldest leave first, cut


def test_counts_of_texts_gone_from_the_window_are_forgotten() -> None:
    window = ChatWindow(ChatConfig(chat_size=1, compact_history=False), TokenBudget(1000))
    for n in range(1, 50):
        talk(window, 1, start=n)
        count_words(window)
    assert window.uncounted() == []
    assert len(window._counts) <= 4  # the system prompt, the instructions, one exchange


CALL = '<tool_call>{"name": "calculate", "arguments": {"expression": "17 * 23"}}</tool_call>'


def test_an_exchange_keeps_its_calls_which_leave_and_are_summarised_with_it() -> None:
    window = ChatWindow(ChatConfig(init_chat_prompt="", chat_size=2, compact_history=False))
    window.add_exchange("What is 17 times 23?", "It is 391.", [(CALL, "391")])
    window.after_reply()
    assert window.history == [
        ChatMessage("user", "What is 17 times 23?"), ChatMessage("assistant", CALL),
        ChatMessage("tool", "391"), ChatMessage("assistant", "It is 391."),
    ]  # fmt: skip
    assert window.user_turns == 1  # a call is no turn
    talk(window, 2)
    assert contents(window.history) == ["question 1", "answer 1", "question 2", "answer 2"]

    compacting = ChatWindow(ChatConfig(chat_size=2))
    compacting.add_exchange("What is 17 times 23?", "It is 391.", [(CALL, "391")])
    talk(compacting, 2)
    plan = compacting.plan_compaction()
    assert plan is not None
    transcript = plan.request[-1].content
    assert "User: What is 17 times 23?" in transcript and "Assistant: It is 391." in transcript
    assert "tool_call" not in transcript and "391\n" not in transcript
