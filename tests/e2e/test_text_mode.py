"""Text mode end to end: the real CLI, typed lines on standard input, real language models."""

from pathlib import Path

import pytest

from adapters.llama_server import LlamaServer
from tests.adapters.pulse_server import serving
from tests.e2e.offline_agent import run_typed

QUESTIONS = ["What is the capital of France?", "And what is the capital of Spain?"]


def answered_in_order(run_stdout: str, records: list[dict[str, object]]) -> None:
    assert [r["user_text"] for r in records] == QUESTIONS
    assert [(r["outcome"], r["error"]) for r in records] == [("answered", None)] * 2
    assert "Paris" in str(records[0]["assistant_text"])
    # Each reply is one line, as it streamed.
    replies = [line for line in run_stdout.splitlines() if line.startswith("ASSISTANT: ")]
    assert [line.removeprefix("ASSISTANT: ") for line in replies] == [
        str(r["assistant_text"]) for r in records
    ]


@pytest.mark.slow
def test_the_embedded_default_answers_typed_questions_without_a_sound_device(
    tmp_path: Path,
) -> None:
    run = run_typed(tmp_path, QUESTIONS, "--llm_gen_max_new_tokens", "32")
    answered_in_order(run.stdout, run.records)
    assert all(r["voice_to_voice_ms"] is None and r["stt_ms"] is None for r in run.records)


@pytest.mark.slow
def test_text_mode_talks_to_a_llama_cpp_server_through_chat_completions(tmp_path: Path) -> None:
    with LlamaServer(threads=1) as server:
        run = run_typed(
            tmp_path, QUESTIONS, "--llm_backend", "chat-completions",
            "--responses_api_base_url", server.base_url,
            "--responses_api_api_key", server.api_key, "--model_name", "local",
            "--llm_gen_max_new_tokens", "32",
        )  # fmt: skip
    answered_in_order(run.stdout, run.records)
    assert all(r["llm_ttft_ms"] is not None for r in run.records)  # streamed from the server


@pytest.mark.slow
def test_with_speak_the_answer_is_also_heard_from_the_speaker(tmp_path: Path) -> None:
    (tmp_path / "pulse").mkdir()
    with serving(tmp_path / "pulse") as server:
        run = run_typed(
            tmp_path, QUESTIONS[:1], "--speak", "--audio_api", "pulse",
            "--llm_gen_max_new_tokens", "16", pulse_server=server.server,
        )  # fmt: skip
        heard = memoryview(server.heard()).cast("h")
    (record,) = run.records
    assert record["outcome"] == "answered" and "Paris" in str(record["assistant_text"])
    # From the Enter key to the reply's first sound, on the audio clock.
    assert 0 < record["voice_to_voice_ms"] < 10_000
    assert max(abs(sample) for sample in heard) > 1000
