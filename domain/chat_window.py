"""The conversation history sent to the language model, kept within `chat_size` user turns.

The system prompt lives apart and is never evicted or compacted. After each reply, when there
are more than `chat_size` user turns, either the older turns are planned for a background
summary (`compact_history`) or the oldest whole turns are evicted. A hard cap of twice the
window evicts synchronously if summaries lag behind.
"""

from __future__ import annotations

import attrs

from domain.messages import ChatMessage

# Tuned on benchmarks/answer_quality.py: small models answer more questions right when told the
# answer is spoken than when held to "less than 20 words", and the example cuts down on lists.
DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful voice assistant. Your answers are spoken aloud, so reply in one or two "
    "short, complete sentences of plain text. Do not use lists, numbered steps, Markdown or "
    "emoji. For example, asked how to make tea, say: Boil water, pour it over a tea bag, and let "
    "it steep for three minutes. Be accurate."
)
ASSISTANT_ROLE = "assistant"

SUMMARY_INSTRUCTIONS = (
    "You summarise conversations for a voice assistant's memory. Write a short, factual summary "
    "of the conversation below: who said what, names, numbers, decisions and open questions. "
    "Plain sentences, no lists, at most 120 words."
)
SUMMARY_QUESTION = "What have we talked about so far?"


@attrs.frozen
class ChatConfig:
    chat_size: int = attrs.field(default=30, validator=attrs.validators.ge(1))
    init_chat_role: str = attrs.field(default="system", validator=attrs.validators.min_len(1))
    init_chat_prompt: str = DEFAULT_SYSTEM_PROMPT
    user_role: str = attrs.field(default="user", validator=attrs.validators.min_len(1))
    compact_history: bool = True

    @property
    def hard_cap(self) -> int:
        return 2 * self.chat_size


@attrs.frozen
class _Entry:
    seq: int
    message: ChatMessage
    is_summary: bool = False


@attrs.frozen
class CompactionPlan:
    """Summarise every entry up to `through_seq`. `request` is what to send to the model."""

    through_seq: int
    request: tuple[ChatMessage, ...]


def summary_request(history: list[ChatMessage]) -> tuple[ChatMessage, ...]:
    transcript = "\n".join(f"{m.role}: {m.content}" for m in history)
    return (
        ChatMessage("system", SUMMARY_INSTRUCTIONS),
        ChatMessage("user", f"Conversation:\n{transcript}"),
    )


class ChatWindow:
    """Not thread-safe by itself: the application serialises calls."""

    def __init__(self, config: ChatConfig) -> None:
        self._config = config
        self._entries: list[_Entry] = []
        self._next_seq = 0
        self._compacting: CompactionPlan | None = None

    @property
    def system(self) -> ChatMessage | None:
        prompt = self._config.init_chat_prompt
        return ChatMessage(self._config.init_chat_role, prompt) if prompt else None

    @property
    def history(self) -> list[ChatMessage]:
        return [e.message for e in self._entries]

    @property
    def user_turns(self) -> int:
        return sum(1 for e in self._entries if self._is_user_turn(e))

    @property
    def compacting(self) -> bool:
        return self._compacting is not None

    def add_user(self, text: str) -> None:
        self._append(ChatMessage(self._config.user_role, text))

    def add_assistant(self, text: str) -> None:
        self._append(ChatMessage(ASSISTANT_ROLE, text))

    def request(
        self, extra_user_message: str | None = None, *, new_user_text: str | None = None
    ) -> list[ChatMessage]:
        """Messages for the next reply: system prompt, history, and an optional instruction
        that is sent but never stored (the reply-language prompt). `new_user_text` previews the
        request as if that user message had been added (a reply asked for ahead of time)."""
        messages = [self.system] if self.system else []
        messages += self.history
        if new_user_text is not None:
            messages.append(ChatMessage(self._config.user_role, new_user_text))
        if extra_user_message:
            messages.append(ChatMessage(self._config.user_role, extra_user_message))
        return messages

    def after_reply(self) -> CompactionPlan | None:
        """Keep the window in bounds; returns a plan when a background summary should start."""
        over = self.user_turns > self._config.chat_size
        if not over:
            return None
        if not self._config.compact_history:
            self._evict_to(self._config.chat_size)
            return None
        if self.user_turns > self._config.hard_cap:
            self._evict_to(self._config.chat_size)
        if self._compacting is not None:
            return None
        latest_user = max(i for i, e in enumerate(self._entries) if self._is_user_turn(e))
        older = self._entries[:latest_user]
        if not older:
            return None
        self._compacting = CompactionPlan(
            older[-1].seq, summary_request([e.message for e in older])
        )
        return self._compacting

    def apply_summary(self, plan: CompactionPlan, summary: str) -> None:
        """Replace what the plan covered by a question/answer pair holding the summary. Entries
        added since the plan (or evicted meanwhile) are respected; a plan abandoned meanwhile
        is not applied."""
        if self._compacting is not plan:  # identity: an equal plan made later is another one
            return
        self._compacting = None
        summary = summary.strip()
        if not summary:
            return  # an empty summary is a failed one: keep the history as it is
        kept = [e for e in self._entries if e.seq > plan.through_seq]
        pair = [
            _Entry(plan.through_seq, ChatMessage(self._config.user_role, SUMMARY_QUESTION), True),
            _Entry(plan.through_seq, ChatMessage(ASSISTANT_ROLE, summary), True),
        ]
        self._entries = pair + kept

    def abandon_summary(self, plan: CompactionPlan) -> None:
        """The summary failed: the history stays as it was, and a later reply may try again."""
        if self._compacting is plan:
            self._compacting = None

    def _append(self, message: ChatMessage) -> None:
        self._entries.append(_Entry(self._next_seq, message))
        self._next_seq += 1

    def _is_user_turn(self, entry: _Entry) -> bool:
        return not entry.is_summary and entry.message.role == self._config.user_role

    def _evict_to(self, turns: int) -> None:
        """Drop the oldest whole turns (a user message and what answered it) until `turns`
        user turns remain."""
        while self.user_turns > turns:
            first = next(i for i, e in enumerate(self._entries) if self._is_user_turn(e))
            end = next(
                (j for j in range(first + 1, len(self._entries))
                 if self._is_user_turn(self._entries[j])),
                len(self._entries),
            )  # fmt: skip
            del self._entries[:end]
