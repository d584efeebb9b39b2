"""The conversation history sent to the language model, kept in bounds.

Three bounds, and the system prompt apart, never evicted:
- `chat_size` user turns: past it, the older half of them leave the window;
- where the model's context is known, a budget of tokens (`TokenBudget`), counted in the model's
  own tokens once the application has counted them, estimated on the safe side until then:
  past a share of it, older turns leave; every request fits it whatever happens, the oldest
  turns left out first;
- a hard cap of twice `chat_size` turns, kept synchronously when summaries are late.

With `compact_history`, the turns that leave go into the notes (domain/notes.py): the user's
own words, kept as they said them, and a summary the model writes in the background of the
leaving turns merged with its previous one (`CompactionPlan`, then `apply_summary`): only the
leaving turns and the summary so far are read again, never the whole history. Turns dropped
because a summary is late (the hard cap) leave their user's words in the notes all the same.
The notes are a user/assistant pair placed after the turns that stay, so those keep their place
in a prompt cache that can shift a block it already read (llama.cpp's cache reuse): notes that
change cost reading the notes, not the history. Without `compact_history` the oldest turns are
dropped, as upstream does.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import attrs

from domain.messages import ChatMessage
from domain.notes import ACK as NOTES_ACK
from domain.notes import Notes
from domain.tools import parse_call

# Tuned on benchmarks/answer_quality.py: small models answer more questions right when told the
# answer is spoken than when held to "less than 20 words", and the example cuts down on lists.
# The second example keeps the user's facts theirs ("You live in Rome", not "I live in Rome");
# naming what the model cannot know, with the words to say, stops most invented times and prices
# (by kind in docs/answer-quality.md).
_VOICE_PROMPT = (
    "You are a helpful voice assistant talking with a user. Your answers are spoken aloud, so "
    "reply in one or two short, complete sentences of plain text. Do not use lists, numbered "
    "steps, Markdown or emoji. For example, asked how to make tea, say: Boil water, pour it over "
    "a tea bag, and let it steep for three minutes. Be accurate. Facts the user tells you are "
    "about the user, so give them back with you and your. For example, after the user says: I "
    "live in Rome, and asks: Where do I live?, say: You live in Rome. "
)
_UNKNOWN = (
    "You know only what you learned and what the user says: you have no {lacks}camera, "
    "accounts or internet. So when asked {asked}the weather, a price, a score, the news, or "
    "what is around the user, say: Sorry, I don't know that."
)


def system_prompt(tool_uses: Sequence[str] = (), knows_the_time: bool = False) -> str:
    """The default system prompt; with tools, it names what they are for (the 1.5B then calls
    them; told only that it has tools, it says it used one and does not), and a clock among
    them takes the time and the date out of what the model must say it does not know."""
    clock = "" if knows_the_time else "clock, calendar, "
    asked = "" if knows_the_time else "the time, the date, "
    prompt = _VOICE_PROMPT + _UNKNOWN.format(lacks=clock, asked=asked)
    return f"{prompt} Use your tools for {' and '.join(tool_uses)}." if tool_uses else prompt


DEFAULT_SYSTEM_PROMPT = system_prompt()
ASSISTANT_ROLE = "assistant"
TOOL_ROLE = "tool"

# What the user said is kept in their own words (domain/notes.py); the model summarises the
# rest: what the assistant told them.
SUMMARY_INSTRUCTIONS = (
    "You keep the notes of a voice assistant about its conversation with a user. Rewrite the "
    "summary so far together with the new exchanges as at most four short sentences: what was "
    "talked about, and what the assistant told the user (facts, advice, numbers, names). Plain "
    "sentences only."
)
# A summary longer than this is cut at its last sentence within it.
SUMMARY_CHARS = 600
# What the user said takes at most this share of the token budget in the notes (or, without a
# budget, this many tokens): about sixty spoken sentences in a context of 4096.
SAID_SHARE = 0.2
SAID_TOKENS = 800
# A message costs its text and its chat template's markers ("<|im_start|>user\n" ...
# "<|im_end|>\n" is 5 tokens in Qwen's); the reply's own opening is in it too.
MESSAGE_OVERHEAD_TOKENS = 8
# Until counted, a text is taken as a token per two bytes of UTF-8: English runs at about four
# characters a token, and scripts of three-byte characters at one or two characters a token.
BYTES_PER_TOKEN_ESTIMATE = 2
# One message longer than this is cut in the summariser's transcript (a turn of television).
SUMMARISED_MESSAGE_CHARS = 2000
# Below this a context holds little more than a system prompt: no budget is worth keeping.
MIN_BUDGET_TOKENS = 256


def estimated_tokens(text: str) -> int:
    return math.ceil(len(text.encode("utf-8")) / BYTES_PER_TOKEN_ESTIMATE)


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

    @property
    def turns_kept(self) -> int:
        """The newest turns a summary leaves as they are."""
        return max(1, self.chat_size // 2)


@attrs.frozen
class TokenBudget:
    """The most tokens a request's messages may take (the model's context less its reply's
    room). Older turns start to leave once the history takes `compact_at` of it, and leave
    until at most `keep` of it remains; the space between is time for a summary to land."""

    prompt: int = attrs.field(validator=attrs.validators.ge(MIN_BUDGET_TOKENS))
    compact_at: float = 0.6
    keep: float = 0.3

    @classmethod
    def within(cls, prompt: int | None) -> TokenBudget | None:
        """The budget of a model whose requests may take `prompt` tokens; None where that is
        not known, or too small to keep a history in."""
        return cls(prompt) if prompt is not None and prompt >= MIN_BUDGET_TOKENS else None

    @property
    def compact_tokens(self) -> int:
        return int(self.compact_at * self.prompt)

    @property
    def keep_tokens(self) -> int:
        return int(self.keep * self.prompt)


@attrs.frozen
class _Entry:
    seq: int
    message: ChatMessage
    is_summary: bool = False


@attrs.frozen
class CompactionPlan:
    """Summarise the summary so far and every entry up to `through_seq`. `request` is what to
    send to the model; `said` is what the user said in the turns that leave."""

    through_seq: int
    request: tuple[ChatMessage, ...]
    said: tuple[str, ...]


class ChatWindow:
    """Not thread-safe by itself: the application serialises calls."""

    def __init__(self, config: ChatConfig, budget: TokenBudget | None = None) -> None:
        self._config = config
        self._budget = budget
        self._entries: list[_Entry] = []
        self._next_seq = 0
        self._compacting: CompactionPlan | None = None
        self._notes = Notes()
        self._counts: dict[str, int] = {}  # text -> its tokens, as the model counted them

    # -- what the model reads ---------------------------------------------------------------

    def instruct(self, prompt: str) -> None:
        """A new system prompt (empty: none) for every later request; the history stays."""
        self._config = attrs.evolve(self._config, init_chat_prompt=prompt)

    @property
    def system(self) -> ChatMessage | None:
        prompt = self._config.init_chat_prompt
        return ChatMessage(self._config.init_chat_role, prompt) if prompt else None

    @property
    def history(self) -> list[ChatMessage]:
        return [e.message for e in self._entries]

    @property
    def notes(self) -> Notes:
        """What the turns that left the window left behind."""
        return self._notes

    @property
    def user_turns(self) -> int:
        return sum(1 for e in self._entries if self._is_user_turn(e))

    @property
    def compacting(self) -> bool:
        return self._compacting is not None

    @property
    def budget(self) -> TokenBudget | None:
        return self._budget

    def tokens(self, messages: Iterable[ChatMessage]) -> int:
        """What `messages` cost, counted where the model counted them, estimated elsewhere."""
        return sum(self._cost(m.content) for m in messages)

    def request(
        self, extra_user_message: str | None = None, *, new_user_text: str | None = None
    ) -> list[ChatMessage]:
        """Messages for the next reply: system prompt, history, and an optional instruction
        that is sent but never stored (the reply-language prompt). `new_user_text` previews the
        request as if that user message had been added (a reply asked for ahead of time).

        Within the token budget whatever the history holds: the oldest turns are left out
        first, the notes last; a user message that alone overflows keeps its end."""
        system = [self.system] if self.system else []
        extra = (
            [ChatMessage(self._config.user_role, extra_user_message)] if extra_user_message else []
        )
        if new_user_text is not None:
            new_user_text = self._fitted(new_user_text, self.tokens(system + extra))
        new = [] if new_user_text is None else [ChatMessage(self._config.user_role, new_user_text)]
        blocks = self._blocks(self._entries)
        if self._budget is not None:
            room = self._budget.prompt - self.tokens(system + new + extra)
            blocks = self._within(blocks, room)
        return system + [e.message for block in blocks for e in block] + new + extra

    # -- token counts -----------------------------------------------------------------------

    def uncounted(self) -> list[str]:
        """The texts the model has not counted yet: the system prompt, the history, and what
        a summary request is made of."""
        texts = [m.content for m in ([self.system] if self.system else [])]
        texts += [e.message.content for e in self._entries] + [SUMMARY_INSTRUCTIONS]
        texts += [self._notes.summary] if self._notes.summary else []
        return list(dict.fromkeys(t for t in texts if t not in self._counts))

    def counted(self, text: str, tokens: int) -> None:
        self._counts[text] = tokens

    # -- after each exchange ----------------------------------------------------------------

    def add_user(self, text: str) -> None:
        self._append(ChatMessage(self._config.user_role, text))

    def add_exchange(self, user: str, reply: str, calls: Sequence[tuple[str, str]] = ()) -> None:
        """A whole exchange: the user's words, each tool call the reply made with its result
        (the canonical call as the assistant's, the result as the tool's), and the reply. The
        calls stay with their turn: the backend needs them to read the history, and a model
        that sees its earlier calls goes on calling (answers alone teach a small one to guess),
        and they count, leave and are summarised with it."""
        self.add_user(user)
        for call, result in calls:
            self._append(ChatMessage(ASSISTANT_ROLE, call))
            self._append(ChatMessage(TOOL_ROLE, result))
        self.add_assistant(reply)

    def add_assistant(self, text: str) -> None:
        self._append(ChatMessage(ASSISTANT_ROLE, text))

    def after_reply(self) -> None:
        """The bound in turns, kept at once: without compaction the oldest turns beyond
        `chat_size` are dropped; with it, those beyond the hard cap (a summary is late). Tokens
        are kept in bounds by `request`, which counts the newest texts too (the window does not
        drop a turn on an estimate)."""
        if not self._config.compact_history or self.user_turns > self._config.hard_cap:
            self._evict(self._config.chat_size)

    def plan_compaction(self) -> CompactionPlan | None:
        """A summary of the turns that leave the window, when the history has outgrown it and
        none is under way. The newest turn always stays."""
        if not self._config.compact_history or self._compacting is not None:
            return None
        budget = self._budget
        over_turns = self.user_turns > self._config.chat_size
        over_tokens = budget is not None and self._history_tokens() > budget.compact_tokens
        if not (over_turns or over_tokens):
            return None
        blocks = self._blocks([e for e in self._entries if not e.is_summary])
        if len(blocks) < 2:
            return None
        keep_tokens = budget.keep_tokens if budget is not None else math.inf
        cut = 1  # blocks[:cut] leave
        while cut < len(blocks) - 1 and (
            len(blocks) - cut > self._config.turns_kept
            or self.tokens(e.message for b in blocks[cut:] for e in b) > keep_tokens
        ):
            cut += 1
        leaving = [e.message for block in blocks[:cut] for e in block]
        said = tuple(m.content for m in leaving if m.role == self._config.user_role)
        self._compacting = CompactionPlan(
            blocks[cut - 1][-1].seq, self._summary_request(leaving), said
        )
        return self._compacting

    def apply_summary(self, plan: CompactionPlan, summary: str) -> bool:
        """The notes become `summary`, after the turns that stay; what the plan covered leaves.
        Entries added since the plan (or evicted meanwhile) are respected; a plan abandoned
        meanwhile, or an empty summary (a failed one), changes nothing. Whether it landed."""
        if self._compacting is not plan:  # identity: an equal plan made later is another one
            return False
        self._compacting = None
        summary = _within_chars(" ".join(summary.split()), SUMMARY_CHARS)
        if not summary:
            return False
        self._entries = [e for e in self._entries if e.seq > plan.through_seq]
        notes = self._notes.hearing(list(plan.said), self._said_room(), self._text_cost)
        self._take_notes(attrs.evolve(notes, summary=summary))
        return True

    def abandon_summary(self, plan: CompactionPlan) -> None:
        """The summary failed: the history stays as it was, and a later reply may try again."""
        if self._compacting is plan:
            self._compacting = None

    # -- inside ---------------------------------------------------------------------------------

    def _take_notes(self, notes: Notes) -> None:
        """The notes become `notes`, as a pair after everything else in the history."""
        self._notes = notes
        self._entries = [e for e in self._entries if not e.is_summary]
        self._append(ChatMessage(self._config.user_role, notes.text()), True)
        self._append(ChatMessage(ASSISTANT_ROLE, NOTES_ACK), True)
        self._forget_counts()

    def _said_room(self) -> int:
        budget = self._budget
        return int(SAID_SHARE * budget.prompt) if budget is not None else SAID_TOKENS

    def _text_cost(self, text: str) -> int:
        """A quoted utterance in the notes: its text and its quotes."""
        return self._cost(text) - MESSAGE_OVERHEAD_TOKENS + 2

    def _append(self, message: ChatMessage, is_summary: bool = False) -> None:
        self._entries.append(_Entry(self._next_seq, message, is_summary))
        self._next_seq += 1

    def _is_user_turn(self, entry: _Entry) -> bool:
        return not entry.is_summary and entry.message.role == self._config.user_role

    def _cost(self, text: str) -> int:
        tokens = self._counts.get(text)
        return (estimated_tokens(text) if tokens is None else tokens) + MESSAGE_OVERHEAD_TOKENS

    def _history_tokens(self) -> int:
        return self.tokens(e.message for e in self._entries)

    def _blocks(self, entries: list[_Entry]) -> list[list[_Entry]]:
        """The entries cut at each user message: a turn and what answered it, or the notes."""
        blocks: list[list[_Entry]] = []
        for entry in entries:
            if not blocks or entry.message.role == self._config.user_role:
                blocks.append([])
            blocks[-1].append(entry)
        return blocks

    def _within(self, blocks: list[list[_Entry]], room: int) -> list[list[_Entry]]:
        """The newest blocks that fit `room` tokens, the notes kept longest."""
        kept = list(blocks)
        cost = self.tokens(e.message for b in kept for e in b)
        while kept and cost > room:
            notes_only = all(b[0].is_summary for b in kept)
            oldest = next(b for b in kept if notes_only or not b[0].is_summary)
            kept.remove(oldest)
            cost -= self.tokens(e.message for e in oldest)
        return kept

    def _fitted(self, text: str, others: int) -> str:
        """`text`, or as much of its end as fits the budget beside `others` tokens."""
        if self._budget is None:
            return text
        room = self._budget.prompt - others - MESSAGE_OVERHEAD_TOKENS
        if self._cost(text) - MESSAGE_OVERHEAD_TOKENS <= room:
            return text
        kept, size = len(text), 0
        while (
            kept and size + len(text[kept - 1].encode("utf-8")) <= room * BYTES_PER_TOKEN_ESTIMATE
        ):
            kept -= 1
            size += len(text[kept].encode("utf-8"))
        return text[kept:]

    def _summary_request(self, leaving: list[ChatMessage]) -> tuple[ChatMessage, ...]:
        """The summariser's request, its messages cut shorter until it fits the budget."""
        chars = SUMMARISED_MESSAGE_CHARS
        budget = self._budget
        while budget is not None and self._summary_tokens(leaving, chars) > budget.prompt:
            if chars <= 1:
                break
            chars //= 2
        return summary_request(self._notes.summary, leaving, self._config, chars)

    def _summary_tokens(self, leaving: list[ChatMessage], chars: int) -> int:
        """What the summariser's request costs, from its parts' counts: each message of the
        transcript as counted (or its cut start, estimated), the speaker's name with it."""
        lines = sum(
            self._cost(m.content)
            if len(m.content) <= chars
            else estimated_tokens(m.content[:chars]) + MESSAGE_OVERHEAD_TOKENS
            for m in leaving
        )
        return self._cost(SUMMARY_INSTRUCTIONS) + self._cost(self._notes.summary) + lines

    def _evict(self, turns: int) -> None:
        """Drop the oldest whole turns (a user message and what answered it) until at most
        `turns` user turns remain. With compaction, what the user said in them goes into the
        notes: no summary came for them in time, but nothing the user said is lost."""
        blocks = [b for b in self._blocks(self._entries) if not b[0].is_summary]
        gone = [e for block in blocks[: max(0, len(blocks) - turns)] for e in block]
        if not gone:
            return
        self._entries = [e for e in self._entries if e not in gone]
        said = [e.message.content for e in gone if self._is_user_turn(e)]
        if self._config.compact_history:
            self._take_notes(self._notes.hearing(said, self._said_room(), self._text_cost))
        else:
            self._forget_counts()

    def _forget_counts(self) -> None:
        """Counts of texts no longer in the window: a long talk must not grow them forever."""
        present = {e.message.content for e in self._entries}
        present |= {m.content for m in ([self.system] if self.system else [])}
        present |= {SUMMARY_INSTRUCTIONS, self._notes.summary}
        self._counts = {t: n for t, n in self._counts.items() if t in present}


def _within_chars(text: str, chars: int) -> str:
    """`text`, or as many of its first sentences as fit in `chars` (its start, if none does)."""
    if len(text) <= chars:
        return text
    cut = text[:chars]
    end = max(cut.rfind(". "), cut.rfind("! "), cut.rfind("? "))
    return cut[: end + 1] if end > 0 else cut.rstrip()


def summary_request(
    summary: str,
    leaving: list[ChatMessage],
    config: ChatConfig,
    message_chars: int = SUMMARISED_MESSAGE_CHARS,
) -> tuple[ChatMessage, ...]:
    """What the summariser reads: its instructions, the notes so far and the turns that leave
    (each message cut to `message_chars`; tool calls and results left out, the replies hold
    what they gave)."""

    def speaker(message: ChatMessage) -> str:
        return "User" if message.role == config.user_role else "Assistant"

    said = [m for m in leaving if m.role != TOOL_ROLE
            and not (m.role == ASSISTANT_ROLE and parse_call(m.content) is not None)]  # fmt: skip
    transcript = "\n".join(f"{speaker(m)}: {m.content[:message_chars]}" for m in said)
    return (
        ChatMessage("system", SUMMARY_INSTRUCTIONS),
        ChatMessage(
            "user", f"Summary so far: {summary or 'none.'}\n\nNew exchanges:\n{transcript}"
        ),
    )
