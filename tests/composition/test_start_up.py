"""Start-up as a user meets it: every impossible setting refused in one line before anything
loads, a language model that cannot be reached named in one line, and Ctrl-C or SIGTERM at any
moment ending the real CLI within a second, without a traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from composition import containers
from composition.config import resolve
from composition.containers import conversation_settings
from composition.local import STOP_DEADLINE_S, check_config, main
from composition.settings import ConfigError
from tests.adapters.llama_fixtures import closed_port_url, failing_server, silent_server

ROOT = Path(__file__).resolve().parents[2]
EXIT_WITHIN_S = 1.0


def config(*argv: str, **environ: str) -> dict[str, Any]:
    return resolve(list(argv), environ=environ)


# -- refusals: one line, exit code 2, before anything loads ----------------------------------

REFUSALS = [
    (["--watchdog_s", "0"], "error: --watchdog_s must be more than 0 seconds (got 0)"),
    (["--max_speech_ms", "300"],
     "error: --max_speech_ms (300) must be longer than --min_speech_ms (384)"),
    (["--min_speech_ms", "800", "--max_speech_ms", "600"],
     "error: --max_speech_ms (600) must be longer than --min_speech_ms (800)"),
    (["--min_silence_ms", "0"], "error: --min_silence_ms must be more than 0 milliseconds"),
    (["--min_speech_ms", "-5"], "error: --min_speech_ms (-5) cannot be negative"),
    (["--speech_pad_ms", "-1"], "error: --speech_pad_ms (-1) cannot be negative"),
    (["--live_transcription_update_interval", "-1"],
     "error: --live_transcription_update_interval (-1) cannot be negative"),
    (["--thresh", "0.1"], "error: --thresh (0.1) must be above 0.15 and at most 1"),
    (["--thresh", "1.5"], "error: --thresh (1.5) must be above 0.15 and at most 1"),
    (["--chat_size", "0"], "error: --chat_size must be at least 1 (got 0)"),
    (["--stream_batch_sentences", "0"], "error: --stream_batch_sentences must be at least 1"),
    (["--llm_threads", "0"], "error: --llm_threads must be at least 1 (got 0)"),
    (["--llm_niceness", "20"], "error: --llm_niceness must be from 0 to 19 (got 20)"),
    (["--llm_gen_max_new_tokens", "0"], "error: --llm_gen_max_new_tokens must be at least 1"),
    (["--user_role", ""], "error: --user_role must not be empty"),
    (["--init_chat_role", " "], "error: --init_chat_role must not be empty"),
    (["--llm_timeout_s", "0"], "error: --llm_timeout_s must be more than 0 seconds"),
    (["--llm_timeout_s", "20"],
     "error: --llm_timeout_s 20 lets a hung language model hold a reply for up to 46.25 s, not "
     "less than --watchdog_s 30, which would end the turn without an apology: lower "
     "--llm_timeout_s to 11.8 or raise --watchdog_s"),
    (["--profile", "api", "--watchdog_s", "5"],
     "error: --llm_timeout_s 10 lets a hung language model hold a reply for up to 26.25 s, not "
     "less than --watchdog_s 5, which would end the turn without an apology: lower "
     "--llm_timeout_s to 1.1 or raise --watchdog_s"),
    (["--stt_timeout_s", "0"], "error: --stt_timeout_s must be more than 0 seconds"),
    (["--stt_timeout_s", "15"],
     "error: --stt_timeout_s 15 lets a hung recogniser hold a turn for up to 30 s, not less than "
     "--watchdog_s 30, which would close it before the fault is known: lower --stt_timeout_s "
     "below 15 or raise --watchdog_s"),
    (["--output_wav", "reply.wav"], "error: --output_wav needs --input_wav"),
    (["--audio_latency", "0"], "error: --audio_latency takes low, high or a number of seconds"),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "message"), REFUSALS, ids=[" ".join(a) for a, _ in REFUSALS])
def test_an_impossible_setting_is_one_line_before_anything_loads(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # --print_config: a refusal that went missing would print the configuration, not load models.
    code = main([*argv, "--print_config"])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert err.startswith(message)
    assert err.count("\n") == 1 and "Traceback" not in err


def test_the_environment_is_refused_in_the_same_terms(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ConfigError, match=r"^--watchdog_s must be more than 0 seconds"):
        check_config(config(VOICE_AGENT_WATCHDOG_S="0"))


@pytest.mark.parametrize(("min_silence_ms", "pause_ms"), [(500, 32), (64, 32), (63, 0), (40, 0)])
def test_a_short_min_silence_works_with_a_shorter_speculative_pause(
    min_silence_ms: float, pause_ms: float
) -> None:
    values = config("--min_silence_ms", str(min_silence_ms))
    check_config(values)
    vad = conversation_settings(values).vad
    assert vad.min_silence_ms == min_silence_ms
    assert vad.pause_ms == pause_ms  # 0: under one 32 ms block there is no pause to use
    assert vad.pause_ms < vad.min_silence_ms


def test_upstreams_64_ms_runs_the_real_cli_to_its_print_config() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "composition.local", "--min_silence_ms", "64", "--print_config"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert '"min_silence_ms": 64.0' in done.stdout


def test_a_local_backend_has_no_request_timeout_to_check() -> None:
    check_config(config("--llm_backend", "transformers", "--llm_timeout_s", "60"))
    with pytest.raises(ConfigError, match="--llm_timeout_s 60"):
        check_config(config("--llm_backend", "llama-cpp", "--llm_timeout_s", "60"))


def test_any_other_settings_error_is_still_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_: Any) -> None:
        raise ValueError("pause_ms (600) must be shorter than min_silence_ms")

    monkeypatch.setattr(containers, "conversation_settings", broken)
    with pytest.raises(ConfigError, match=r"^these settings do not fit together: pause_ms"):
        check_config(config())


# -- the real CLI: a language model that cannot be reached, and signals -----------------------


@pytest.fixture
def silence_wav(tmp_path: Path) -> Path:
    """A minute of 16 kHz silence: the agent listens and hears nothing."""
    path = tmp_path / "silence.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(bytes(2 * 16000 * 60))
    return path


class Agent:
    """`python -m composition.local` in a child process, its stdout and stderr collected as
    they come."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "composition.local", "--log_level", "warning", *args],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"},
        )  # fmt: skip
        self.output = ""
        self._lock = threading.Lock()
        self._readers = [
            threading.Thread(target=self._collect, args=(stream,), daemon=True)
            for stream in (self.process.stdout, self.process.stderr)
        ]
        for reader in self._readers:
            reader.start()

    def _collect(self, stream: Any) -> None:
        for chunk in iter(lambda: stream.read(1), ""):
            with self._lock:
                self.output += chunk

    def wait_for(self, text: str, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while text not in self.output:
            assert self.process.poll() is None, f"exited before {text!r}:\n{self.output}"
            assert time.monotonic() < deadline, f"no {text!r} in {timeout_s} s:\n{self.output}"
            time.sleep(0.01)

    def stop_with(self, signum: int) -> float:
        """Sends `signum`; the seconds until the process ended."""
        sent = time.monotonic()
        self.process.send_signal(signum)
        self.process.wait(timeout=10)
        took = time.monotonic() - sent
        for reader in self._readers:
            reader.join(5)
        return took

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def agents() -> Iterator[list[Agent]]:
    started: list[Agent] = []
    yield started
    for agent in started:
        agent.kill()


def api_agent(agents: list[Agent], url: str, wav: Path, *args: str) -> Agent:
    agent = Agent("--profile", "api", "--responses_api_base_url", url, "--input_wav", str(wav),
                  *args)  # fmt: skip
    agents.append(agent)
    return agent


def test_a_server_that_is_down_is_named_in_one_line(agents: list[Agent], silence_wav: Path) -> None:
    url = closed_port_url()
    agent = api_agent(agents, url, silence_wav)
    assert agent.process.wait(timeout=60) == 2
    for reader in agent._readers:
        reader.join(5)
    assert "Traceback" not in agent.output
    assert agent.output.strip().splitlines()[-1] == (
        f"error: cannot reach the language model at {url} (connection refused): start the "
        "server or fix --responses_api_base_url"
    )


def test_a_server_that_refuses_the_request_is_named_in_one_line(
    agents: list[Agent], silence_wav: Path
) -> None:
    with failing_server(401) as (url, _):
        agent = api_agent(agents, url, silence_wav, "--responses_api_api_key", "sk-secret-123456")
        assert agent.process.wait(timeout=60) == 2
    for reader in agent._readers:
        reader.join(5)
    last = agent.output.strip().splitlines()[-1]
    assert last.startswith(f"error: the language model at {url} refused the warm-up request")
    assert "HTTP 401" in last and "--model_name" in last
    assert "sk-secret-123456" not in agent.output and "Traceback" not in agent.output


def test_a_server_that_hangs_is_named_after_the_timeout(
    agents: list[Agent], silence_wav: Path
) -> None:
    with silent_server() as url:
        agent = api_agent(agents, url, silence_wav, "--llm_timeout_s", "1")
        started = time.monotonic()
        assert agent.process.wait(timeout=60) == 2
        assert time.monotonic() - started < 10
    for reader in agent._readers:
        reader.join(5)
    assert agent.output.strip().splitlines()[-1] == (
        f"error: the language model at {url} accepted the connection but sent nothing for 1 s: "
        "is the server stuck or overloaded? (--llm_timeout_s, --responses_api_base_url)"
    )


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_while_waiting_for_the_server_stops_at_once(
    agents: list[Agent], silence_wav: Path, signum: int, code: int
) -> None:
    with silent_server() as url:
        agent = api_agent(agents, url, silence_wav)
        agent.wait_for("Loading language model…")
        time.sleep(0.3)  # inside the warm-up request, which would wait 10 s
        took = agent.stop_with(signum)
    assert agent.process.returncode == code
    assert took < EXIT_WITHIN_S
    assert agent.output.count("Stopping.") == 1
    assert "Traceback" not in agent.output


def test_a_second_ctrl_c_does_not_break_the_stop(agents: list[Agent], silence_wav: Path) -> None:
    with silent_server() as url:
        agent = api_agent(agents, url, silence_wav)
        agent.wait_for("Loading language model…")
        time.sleep(0.3)
        agent.process.send_signal(signal.SIGINT)
        time.sleep(0.02)
        took = agent.stop_with(signal.SIGINT)
    assert agent.process.returncode == 130
    assert took < EXIT_WITHIN_S
    assert agent.output.count("Stopping.") == 1
    assert "Traceback" not in agent.output


@pytest.mark.slow
@pytest.mark.parametrize(
    "moment",
    ["Loading language model…", "Loading voice activity…", "Loading speech-to-text…",
     "Loading text-to-speech…", "Listening."],
)  # fmt: skip
def test_ctrl_c_at_any_moment_of_the_embedded_profile_stops_within_a_second(
    agents: list[Agent], silence_wav: Path, moment: str
) -> None:
    agent = Agent("--input_wav", str(silence_wav))
    agents.append(agent)
    agent.wait_for(moment)
    time.sleep(0.05)
    took = agent.stop_with(signal.SIGINT)
    assert took < EXIT_WITHIN_S, agent.output
    assert "Traceback" not in agent.output
    # llama.cpp loads its model in its own process: the agent answers the signal even then.
    assert agent.process.returncode == 130
    assert agent.output.count("Stopping.") == 1


@pytest.mark.slow
def test_a_second_ctrl_c_while_the_agent_stops_is_quiet(
    agents: list[Agent], silence_wav: Path
) -> None:
    agent = Agent("--input_wav", str(silence_wav))
    agents.append(agent)
    agent.wait_for("Listening.")
    agent.process.send_signal(signal.SIGINT)
    time.sleep(0.02)  # inside conversation.stop() and the closing of the stages
    took = agent.stop_with(signal.SIGINT)
    assert agent.process.returncode == 130
    assert took < EXIT_WITHIN_S
    assert agent.output.count("Stopping.") == 1
    assert "Traceback" not in agent.output and "Exception ignored" not in agent.output


def test_a_stop_that_hangs_is_cut_short_at_the_deadline() -> None:
    script = (
        "import time\n"
        "from composition.local import Interrupted, StopOnSignal\n"
        "stopper = StopOnSignal().install()\n"
        "try:\n"  # 'ready' inside: a signal right after it must still be caught below
        "    print('ready', flush=True)\n"
        "    time.sleep(30)\n"
        "except Interrupted:\n"
        "    stopper.announce()\n"
        "    time.sleep(30)  # a stage that never stops\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        sent = time.monotonic()
        child.send_signal(signal.SIGINT)
        child.wait(timeout=10)
        took = time.monotonic() - sent
        assert child.stderr is not None
        err = child.stderr.read()
    finally:
        child.kill()
        child.wait()
    assert child.returncode == 130
    assert STOP_DEADLINE_S <= took < EXIT_WITHIN_S
    assert err == "Stopping.\n"


def test_an_interruption_a_library_turned_into_its_own_error_is_still_a_quiet_stop() -> None:
    # Seen for real: Ctrl-C during `import faster_whisper` came out as "not installed".
    script = (
        "import time\n"
        "import composition.local as local\n"
        "from adapters.errors import SetupError\n"
        "def run(config, stopper):\n"
        "    print('ready', flush=True)\n"
        "    try:\n"
        "        time.sleep(30)\n"
        "    except BaseException:\n"
        "        raise SetupError('faster-whisper is not installed') from None\n"
        "local.run = run\n"
        "code = local.start(['--log_level', 'warning'], local.StopOnSignal().install())\n"
        "print('exit code', code, flush=True)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=10)
    finally:
        child.kill()
        child.wait()
    assert out == "exit code 130\n"
    assert err == "Stopping.\n"
