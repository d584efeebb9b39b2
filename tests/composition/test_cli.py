"""The command line as a user meets it: fast help, JSON config, one-line errors."""

import json
import os
import subprocess
import sys
import time
import wave
from pathlib import Path

import pytest

from composition.local import main

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "composition.local", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def test_help_is_fast_and_imports_no_model_library() -> None:
    probe = (
        "import sys, time; t = time.perf_counter()\n"
        "from composition.local import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'transformers', 'mlx', 'onnxruntime', 'ctranslate2',\n"
        "         'faster_whisper', 'piper', 'sounddevice', 'openai') if m in sys.modules]\n"
        "print(repr((time.perf_counter() - t, heavy)), file=sys.stderr)\n"
    )
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    wall = time.perf_counter() - started
    seconds, heavy = eval(done.stderr.strip().splitlines()[-1])
    assert heavy == []
    assert "--responses_api_reasoning_effort" in done.stdout
    assert seconds < 1.0 and wall < 3.0


def test_print_config_is_json_with_the_key_redacted() -> None:
    done = run_cli("--print_config", "--profile", "api", "--responses_api_api_key", "sk-abc123xyz",
                   "--max_speech_ms", "inf")  # fmt: skip
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["profile"] == "api"
    assert shown["stages"]["llm"] == {"backend": "responses-api", "model": "gpt-5.4-mini",
                                      "device": "cpu"}  # fmt: skip
    assert "sk-abc123xyz" not in done.stdout + done.stderr
    assert shown["settings"]["max_speech_ms"] == "inf"


@pytest.mark.parametrize(
    ("flags", "audio"),
    [
        (("--audio_api", "portaudio"), "sounddevice (PortAudio)"),
        (("--audio_api", "pulse"), "PulseAudio client (pasimple)"),
        (("--audio_api", "auto", "--input_device", "0"), "sounddevice (PortAudio)"),
    ],
)
def test_print_config_names_the_audio_path_that_would_run(
    flags: tuple[str, ...], audio: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--print_config", *flags]) == 0
    assert json.loads(capsys.readouterr().out)["stages"]["audio"] == audio


@pytest.mark.parametrize(
    ("flags", "audio", "voice"),
    [(("--text",), "none (text mode)", "unspoken"),
     (("--text", "--speak", "--audio_api", "pulse"),
      "PulseAudio client (pasimple), speaker only", "piper")],
)  # fmt: skip
def test_text_mode_opens_a_sound_device_only_to_speak(
    flags: tuple[str, ...], audio: str, voice: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--print_config", *flags]) == 0
    stages = json.loads(capsys.readouterr().out)["stages"]
    assert (stages["audio"], stages["tts"]["engine"]) == (audio, voice)
    unheard = "none (typed turns)"
    assert (stages["vad"], stages["end_of_turn"], stages["stt"]) == (unheard,) * 3


@pytest.mark.parametrize(
    ("flags", "refusal"),
    [(("--speak",), "--speak goes with --text"),
     (("--text", "--input_wav", "q.wav"), "--text reads typed lines")],
)  # fmt: skip
def test_text_mode_flags_that_cannot_go_together_are_one_line(
    flags: tuple[str, ...], refusal: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(list(flags)) == 2
    err = capsys.readouterr().err
    assert refusal in err and len(err.strip().splitlines()) == 1


def test_a_missing_api_key_fails_at_start_up_in_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    wav_path = tmp_path / "silence.wav"
    with wave.open(str(wav_path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(bytes(3200))
    env_key = os.environ.pop("OPENAI_API_KEY", None)
    try:
        code = main(["--profile", "api", "--input_wav", str(wav_path), "--log_level", "error"])
    finally:
        if env_key is not None:
            os.environ["OPENAI_API_KEY"] = env_key
    err = capsys.readouterr().err
    assert code != 0
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and "OPENAI_API_KEY" in last
    assert "Traceback" not in err


def test_a_wav_that_cannot_be_read_fails_before_any_model_loads() -> None:
    done = run_cli("--input_wav", "/nonexistent.wav")
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and "/nonexistent.wav" in done.stderr
    assert "Loading" not in done.stderr and "Traceback" not in done.stderr


def test_a_bad_choice_is_rejected_before_anything_loads() -> None:
    done = run_cli("--llm_backend", "nope")
    assert done.returncode == 2 and "invalid choice" in done.stderr
    assert done.stderr.count("\n") == 1  # not the usage of every flag first


@pytest.mark.parametrize(("flags", "named"), [
    (("--tools_module", "/nonexistent_tools.py"), "/nonexistent_tools.py: no such file"),
    (("--tools", "time,clock"), "no built-in tool 'clock'"),
])  # fmt: skip
def test_a_bad_tool_fails_before_any_model_loads(flags: tuple[str, ...], named: str) -> None:
    done = run_cli("--text", *flags)
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and named in done.stderr
    assert "Loading" not in done.stderr and "Traceback" not in done.stderr


def test_a_metrics_file_that_cannot_be_written_fails_before_any_model_loads(
    tmp_path: Path,
) -> None:
    done = run_cli("--text", "--metrics_jsonl", str(tmp_path))  # a folder, not a file
    assert done.returncode == 2
    assert done.stderr == f"error: Cannot write --metrics_jsonl {tmp_path}: Is a directory\n"


def test_a_tool_named_like_a_chosen_built_in_fails_before_any_model_loads(tmp_path: Path) -> None:
    module = tmp_path / "clash.py"
    module.write_text('def set_timer(minutes: int) -> str:\n    """Mine."""\n    return "ok"\n')
    done = run_cli("--text", "--tools", "timer", "--tools_module", str(module))
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and "set_timer is already a built-in" in done.stderr
    assert "Loading" not in done.stderr and "Traceback" not in done.stderr
