"""What a llama.cpp model is run with: its catalogue entry's settings for speech, under the
`--llm_gen_*` flags the user set."""

from __future__ import annotations

import pytest

from adapters.llama_server import default_threads
from adapters.model_catalogue import CATALOGUE, QWEN25_CODER_05B
from composition.config import resolve
from composition.stage_settings import LlmSettings, llm_settings
from composition.stages import generation_settings


def config(*argv: str, **environ: str) -> LlmSettings:
    return llm_settings(resolve(list(argv), environ=environ))


def test_a_catalogue_model_runs_greedy_with_its_repetition_penalty() -> None:
    settings = generation_settings(config(), QWEN25_CODER_05B)
    assert settings == QWEN25_CODER_05B.generation
    assert settings.temperature == 0.0 and settings.repeat_penalty == 1.1
    assert settings.max_new_tokens == 160


def test_the_users_flags_win_over_the_catalogue() -> None:
    values = config("--llm_gen_max_new_tokens", "40", "--llm_gen_repeat_penalty", "1.3",
                    "--llm_gen_top_k", "5")  # fmt: skip
    settings = generation_settings(values, QWEN25_CODER_05B)
    assert (settings.max_new_tokens, settings.repeat_penalty, settings.top_k) == (40, 1.3, 5)
    assert settings.temperature == 0.0
    from_env = generation_settings(
        config(VOICE_AGENT_LLM_GEN_MAX_NEW_TOKENS="64"), CATALOGUE["smollm2"]
    )
    assert from_env.max_new_tokens == 64


def test_sampling_uses_the_authors_settings_unless_told_otherwise() -> None:
    settings = generation_settings(config("--llm_gen_do_sample"), QWEN25_CODER_05B)
    assert (settings.temperature, settings.top_p, settings.top_k) == (0.7, 0.8, 20)
    hotter = generation_settings(
        config("--llm_gen_do_sample", "--llm_gen_temperature", "1.0"), QWEN25_CODER_05B
    )
    assert hotter.temperature == 1.0 and hotter.top_k == 20


def test_a_gguf_outside_the_catalogue_gets_the_flags_only() -> None:
    settings = generation_settings(config(), None)
    assert settings.max_new_tokens == 160 and settings.temperature == 0.0
    assert settings.top_k is None and settings.repeat_penalty is None
    sampled = generation_settings(
        config("--llm_gen_do_sample", "--llm_gen_temperature", "0.5"), None
    )
    assert sampled.temperature == 0.5


@pytest.mark.parametrize(("cores", "threads"), [(1, 1), (2, 2), (4, 3), (8, 4), (64, 4)])
def test_a_local_model_generates_on_every_core_up_to_two_then_leaves_one_for_speech(
    cores: int, threads: int
) -> None:
    assert default_threads(cores) == threads


def test_the_thread_default_is_the_flag_default() -> None:
    assert config().llm_threads == default_threads()
