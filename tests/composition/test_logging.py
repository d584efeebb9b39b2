"""Logs: JSON off a terminal, one event per turn, and never an API key."""

import io
import json
import logging

import structlog

from adapters.metrics_sinks import JsonlMetrics, TurnLog
from composition.logging_setup import configure_logging
from domain.messages import TurnMetrics

SECRET = "sk-live-0123456789abcdef"


def a_turn(**overrides: object) -> TurnMetrics:
    fields: dict[str, object] = dict(
        turn_id=1, user_text="hi", language="en", assistant_text="hello", speech_end_s=1.5,
        stt_ms=120.0, llm_ttft_ms=80.0, first_batch_ms=150.0, tts_first_chunk_ms=90.0,
        voice_to_voice_ms=700.0, outcome="answered", error=None,
    )  # fmt: skip
    fields.update(overrides)
    return TurnMetrics(**fields)  # type: ignore[arg-type]


def logged_lines(secrets: tuple[str, ...] = ()) -> tuple[io.StringIO, object]:
    stream = io.StringIO()
    resource = configure_logging("info", "auto", secrets, stream=stream)
    next(resource)
    return stream, resource


def test_json_off_a_terminal_with_one_event_per_turn() -> None:
    stream, _ = logged_lines()
    TurnLog().record(a_turn())
    (line,) = stream.getvalue().splitlines()
    event = json.loads(line)
    assert event["event"] == "turn" and event["voice_to_voice_ms"] == 700.0
    assert {"stt_ms", "llm_ttft_ms", "first_batch_ms", "tts_first_chunk_ms"} <= set(event)


def test_an_api_key_never_reaches_the_log() -> None:
    stream, _ = logged_lines((SECRET,))
    logging.getLogger("some.adapter").warning("request failed with key %s", SECRET)
    structlog.get_logger("x").info("oops", detail=f"Bearer {SECRET}")
    try:
        raise RuntimeError(f"auth header {SECRET}")
    except RuntimeError:
        logging.getLogger("y").exception("boom")
    TurnLog().record(a_turn(error=f"llm: 401 for {SECRET}"))
    output = stream.getvalue()
    assert SECRET not in output
    assert output.count("***") >= 4


def test_metrics_jsonl_appends_one_object_per_turn(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "metrics" / "turns.jsonl"
    sink = JsonlMetrics(path)
    sink.record(a_turn(turn_id=1))
    sink.record(a_turn(turn_id=2, error="tts: broke"))
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["turn_id"] for r in records] == [1, 2]
    assert set(records[0]) == {
        "turn_id", "user_text", "language", "assistant_text", "speech_end_s", "stt_ms",
        "llm_ttft_ms", "first_batch_ms", "tts_first_chunk_ms", "voice_to_voice_ms",
        "outcome", "error", "interrupted", "interruption_latency_ms", "spoken_text",
        "false_interruptions", "tool_calls", "agent_started",
    }  # fmt: skip


def test_metrics_jsonl_scrubs_secrets(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from composition.logging_setup import SecretRedactor

    path = tmp_path / "turns.jsonl"
    JsonlMetrics(path, scrub=SecretRedactor([SECRET]).scrub).record(
        a_turn(error=f"llm: 401 Unauthorized ({SECRET})")
    )
    assert SECRET not in path.read_text() and "***" in path.read_text()


def test_a_metrics_file_that_fails_is_one_log_line_and_the_turn_log_goes_on(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from adapters.metrics_sinks import FanOut

    stream, _ = logged_lines()
    path = tmp_path / "turns.jsonl"
    sinks = FanOut([JsonlMetrics(path), TurnLog()])
    path.unlink()
    path.mkdir()  # nothing can be appended there, as on a full disk or to a read-only file
    for turn_id in (1, 2, 3):
        sinks.record(a_turn(turn_id=turn_id))
    path.rmdir()  # room again: the next record is written, and said so
    sinks.record(a_turn(turn_id=4))
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [e["turn_id"] for e in events if e["event"] == "turn"] == [1, 2, 3, 4]
    reports = [(e["level"], e["event"]) for e in events if e["event"] != "turn"]
    assert [level for level, _ in reports] == ["warning", "info"]
    assert str(path) in reports[0][1] and "Is a directory" in reports[0][1]
    assert [json.loads(line)["turn_id"] for line in path.read_text().splitlines()] == [4]
