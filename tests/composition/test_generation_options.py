"""A generation option the chosen backend cannot honour is refused at start-up in one line that
names the backend and the options it takes, never dropped in silence."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import pytest

from composition.backends import LLM, STT
from composition.config import resolve, validate
from composition.local import main
from composition.settings import ConfigError
from composition.stage_settings import llm_settings
from composition.stages import LLM_BUILDERS
from domain.messages import ChatMessage
from ports.language_model import LanguageModelError
from tests.adapters.llama_fixtures import official_requests
from tests.replies import whole_reply

__all__ = ["official_requests"]  # a fixture, used by name

LLAMA_TAKES = (
    "it takes --llm_gen_do_sample, --llm_gen_max_new_tokens, --llm_gen_repeat_penalty, "
    "--llm_gen_repetition_penalty, --llm_gen_temperature, --llm_gen_top_k, --llm_gen_top_p"
)
API_TAKES = "it takes --llm_gen_max_new_tokens, --llm_gen_temperature, --llm_gen_top_p"

REFUSED = [
    (["--llm_gen_min_new_tokens", "8"],
     f"error: --llm_backend llama-cpp cannot honour --llm_gen_min_new_tokens: {LLAMA_TAKES}"),
    (["--llm_gen_num_beams", "2", "--llm_gen_min_new_tokens", "1"],
     "error: --llm_backend llama-cpp cannot honour --llm_gen_min_new_tokens, "
     f"--llm_gen_num_beams: {LLAMA_TAKES}"),
    (["--profile", "api", "--llm_gen_top_k", "5"],
     f"error: --llm_backend responses-api cannot honour --llm_gen_top_k: {API_TAKES}"),
    (["--llm_backend", "chat-completions", "--llm_gen_do_sample"],
     f"error: --llm_backend chat-completions cannot honour --llm_gen_do_sample: {API_TAKES}"),
    (["--llm_backend", "mlx-lm", "--model_name", "m", "--llm_gen_num_beams", "4"],
     "error: --llm_backend mlx-lm cannot honour --llm_gen_num_beams: it takes "
     "--llm_gen_do_sample, --llm_gen_max_new_tokens, --llm_gen_min_new_tokens, --llm_gen_min_p, "
     "--llm_gen_repetition_penalty, --llm_gen_temperature, --llm_gen_top_k, --llm_gen_top_p"),
    (["--stt_gen_temperature", "0.2"],
     "error: --stt faster-whisper cannot honour --stt_gen_temperature: it takes "
     "--stt_gen_beam_size"),
    (["--stt", "parakeet-tdt", "--stt_gen_beam_size", "4"],
     "error: --stt parakeet-tdt cannot honour --stt_gen_beam_size: it takes no --stt_gen_* "
     "option"),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "message"), REFUSED, ids=[" ".join(a) for a, _ in REFUSED])
def test_an_option_the_backend_cannot_honour_is_refused_in_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main([*argv, "--print_config"])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert err == message + "\n"


OUT_OF_RANGE = [
    (["--stt_gen_beam_size", "0"],
     "--stt_gen_beam_size must be a whole number, at least 1 (got 0)"),
    (["--llm_gen_top_p", "5"], "--llm_gen_top_p must be a number above 0, at most 1 (got 5)"),
    (["--llm_gen_top_p", "abc"], "--llm_gen_top_p must be a number above 0, at most 1 (got abc)"),
    (["--llm_gen_top_k", "-3"], "--llm_gen_top_k must be a whole number, 0 or more (got -3)"),
    (["--llm_gen_repeat_penalty", "0"],
     "--llm_gen_repeat_penalty must be a number above 0 (got 0)"),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "message"), OUT_OF_RANGE, ids=[a[0] for a, _ in OUT_OF_RANGE])
def test_an_option_out_of_its_range_is_refused_in_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Passed on, each made every turn fail (a beam of 0) or the warm-up (a top_p of "abc").
    code = main([*argv, "--print_config"])
    out, err = capsys.readouterr()
    assert (code, out, err) == (2, "", f"error: {message}\n")


def test_the_environment_is_refused_like_the_flag() -> None:
    refusal = r"^--llm_backend llama-cpp cannot honour --llm_gen_min_new_tokens: it takes"
    with pytest.raises(ConfigError, match=refusal):
        validate(resolve([], environ={"VOICE_AGENT_LLM_GEN_MIN_NEW_TOKENS": "4"}))


@pytest.mark.parametrize(
    "argv",
    [["--llm_gen_top_k", "20", "--llm_gen_repeat_penalty", "1.1", "--llm_gen_do_sample"],
     ["--profile", "api", "--llm_gen_temperature", "0.3", "--llm_gen_top_p", "0.9"],
     ["--llm_backend", "transformers", "--llm_gen_num_beams", "2", "--llm_gen_min_new_tokens", "3"],
     ["--stt", "whisper", "--stt_gen_num_beams", "3"],
     ["--stt_gen_beam_size", "5"]],
    ids=["llama-cpp", "api", "transformers", "whisper", "faster-whisper"],
)  # fmt: skip
def test_options_the_backend_honours_are_accepted(argv: list[str]) -> None:
    config = resolve(argv, environ={})
    assert refusal(config) is None
    given = {flag[2:] for flag in argv if flag.startswith("--") and "_gen_" in flag}
    passed = {f"llm_gen_{k}" for k in config["llm_gen"]} | {
        f"stt_gen_{k}" for k in config["stt_gen"]
    }
    assert given <= passed  # and each reaches the backend's generation options


@pytest.mark.parametrize("backend", LLM)
def test_the_declared_defaults_are_never_refused(backend: str) -> None:
    # min_new_tokens and do_sample have defaults that llama.cpp and the APIs have no use for:
    # only what the user set is checked.
    assert refusal(resolve(["--llm_backend", backend, "--watchdog_s", "60"], environ={})) is None


@pytest.mark.parametrize("engine", STT)
def test_every_stt_engine_runs_with_no_option(engine: str) -> None:
    assert refusal(resolve(["--stt", engine], environ={})) is None


def refusal(config: dict[str, Any]) -> str | None:
    """The line `validate` refuses `config` with, or None."""
    try:
        validate(config)
    except ConfigError as error:
        return str(error)
    return None


@pytest.mark.parametrize("backend", ["responses-api", "chat-completions"])
def test_the_apis_get_the_sampling_the_user_set_and_else_their_own_defaults(
    backend: str, official_requests: list[dict[str, Any]]
) -> None:
    for argv in (["--llm_gen_temperature", "0.3", "--llm_gen_top_p", "0.9"], []):
        config = resolve(["--llm_backend", backend, "--responses_api_api_key", "sk-test", *argv],
                         environ={})  # fmt: skip
        validate(config)
        opened = contextmanager(LLM_BUILDERS[backend])(llm_settings(config))
        # The recording transport answers 400 once it has the request.
        with opened as model, pytest.raises(LanguageModelError):
            whole_reply(model, [ChatMessage("user", "Hi")])
    chosen, defaults = (request["body"] for request in official_requests)
    assert (chosen["temperature"], chosen["top_p"]) == (0.3, 0.9)
    assert "temperature" not in defaults and "top_p" not in defaults
