"""Voice-to-voice latency of the whole agent, measured from outside, as a user would meet it.

Spoken questions (synthesised once with the Piper voice) are played to the agent through WAV
replay in real time, or through a private PulseAudio server with `--through_pulse`, or, with
`--person`, by a simulated person at that server's microphone and speaker who asks a question,
waits for the whole reply and then asks the next: voice-to-voice is then also timed at the
speaker, where a person hears it (benchmarks/simulated_user.py). The agent's own per-turn metrics
(`--metrics_jsonl`) give each stage's latency; this script adds cold start (command ->
listening), peak RSS and CPU while idle, and prints medians and p90.

    .venv/bin/python -m benchmarks.voice_to_voice --person        # the headline figure
    .venv/bin/python -m benchmarks.voice_to_voice                 # WAV replay, embedded profile
    .venv/bin/python -m benchmarks.voice_to_voice --through_pulse # fixed gaps, a sound server
    .venv/bin/python -m benchmarks.voice_to_voice --person --echo # its speaker heard (barge-in)
    .venv/bin/python -m benchmarks.voice_to_voice --person --busy # beside a busy core
    .venv/bin/python -m benchmarks.voice_to_voice -- --stream_batch_sentences 1
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import wave
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from adapters.simulated_room import RoomSpec
    from tests.adapters.pulse_server import PulseServer

from benchmarks.spoken_questions import spoken_questions, synthesise_questions

STAGES = ("stt_ms", "llm_ttft_ms", "first_batch_ms", "tts_first_chunk_ms", "voice_to_voice_ms")
IDLE_WINDOW_S = 4.0  # within the silence before the first question
ROOT = Path(__file__).resolve().parent.parent


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_rss_mb(pid: int) -> float:
    """The resident memory of a process and its descendants (the agent and its llama.cpp
    server), from /proc."""
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue  # ended meanwhile
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) / 1024
    return total


class BusyCore:
    """A program that keeps one core busy, started before the agent in a session of its own, as
    a browser tab or a build beside it would."""

    def __enter__(self) -> BusyCore:
        self._process = subprocess.Popen(
            [sys.executable, "-c", "while True: pass"], start_new_session=True
        )
        time.sleep(1.0)  # running before the agent looks at the machine
        return self

    def __exit__(self, *_: object) -> None:
        self._process.kill()
        self._process.wait()


class Agent:
    """The agent as a child process; notes when it starts listening."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.started = time.monotonic()
        self.listening_at: float | None = None
        self.listening = threading.Event()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "composition.local", *args],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.stderr: list[str] = []
        self.peak_rss_mb = 0.0
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()
        threading.Thread(target=self._sample_rss, daemon=True).start()

    def _sample_rss(self) -> None:
        while self.process.poll() is None:
            self.peak_rss_mb = max(self.peak_rss_mb, tree_rss_mb(self.process.pid))
            time.sleep(0.5)

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("Listening") and not self.listening.is_set():
                self.listening_at = time.monotonic()
                self.listening.set()

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        self.stderr.extend(self.process.stderr)

    def idle_cpu_percent(self) -> float:
        before, t0 = cpu_seconds(self.process.pid), time.monotonic()
        time.sleep(IDLE_WINDOW_S)
        return 100 * (cpu_seconds(self.process.pid) - before) / (time.monotonic() - t0)


def count_lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(options: argparse.Namespace) -> dict[str, object]:
    work = Path(options.out or tempfile.mkdtemp(prefix="v2v-"))
    work.mkdir(parents=True, exist_ok=True)
    questions_wav, metrics = work / "questions.wav", work / "turns.jsonl"
    metrics.unlink(missing_ok=True)
    duration = synthesise_questions(options.turns, options.gap_s, questions_wav)
    common = ["--metrics_jsonl", str(metrics), "--log_level", "warning", *options.agent_args]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    pulse = None
    if options.person:
        return run_person(options, work, metrics, common, env)
    if options.echo and not options.through_pulse:
        common += ["--simulated_echo", "true"]
    if options.through_pulse:
        from tests.adapters.pulse_server import PulseServer

        pulse = PulseServer(work, echo=room(options))
        pulse.start()
        env["PULSE_SERVER"] = pulse.server
        agent = Agent([*device_flags(options), *common], env)
    else:
        agent = Agent(["--input_wav", str(questions_wav), "--output_wav",
                       str(work / "replies.wav"), *common], env)  # fmt: skip
    try:
        if not agent.listening.wait(300):
            raise RuntimeError("the agent never started listening:\n" + "".join(agent.stderr))
        if pulse is not None:
            with wave.open(str(questions_wav)) as wav:
                pulse.say(wav.readframes(wav.getnframes()))
        idle_cpu = agent.idle_cpu_percent()
        if pulse is not None:
            time.sleep(max(0.0, duration - IDLE_WINDOW_S) + 5)
            agent.process.send_signal(signal.SIGTERM)
        agent.process.wait(timeout=duration + 120)
    finally:
        if agent.process.poll() is None:
            agent.process.kill()
        if pulse is not None:
            pulse.stop()
    return report(options, agent, metrics, [], idle_cpu)


def device_flags(options: argparse.Namespace) -> list[str]:
    """The agent reaches the private server as its own client (what `--audio_api auto` picks
    there), or with --portaudio through ALSA's PulseAudio plugin."""
    if options.portaudio:
        return ["--audio_api", "portaudio", "--input_device", "pulse", "--output_device", "pulse"]
    return ["--audio_api", "pulse"]


def room(options: argparse.Namespace) -> RoomSpec | None:
    """With --echo, the private server's speaker is heard by its microphone through a room."""
    from adapters.simulated_room import RoomSpec

    return RoomSpec() if options.echo else None


def run_person(
    options: argparse.Namespace, work: Path, metrics: Path, common: list[str], env: dict[str, str]
) -> dict[str, object]:
    from benchmarks.simulated_user import SimulatedUser
    from tests.adapters.pulse_server import PulseServer

    questions = spoken_questions(options.turns)
    pulse = PulseServer(work, echo=room(options))
    pulse.start()
    env = {**env, "PULSE_SERVER": pulse.server}
    agent = Agent([*device_flags(options), *common], env)
    at_speaker: list[float | None] = []
    gaps: list[float] = []
    try:
        if not agent.listening.wait(300):
            raise RuntimeError("the agent never started listening:\n" + "".join(agent.stderr))
        idle_cpu = agent.idle_cpu_percent()
        user = SimulatedUser(pulse, lambda: count_lines(metrics))
        for question, pcm in questions:
            exchange = user.ask(question, pcm)
            at_speaker.append(exchange.voice_to_voice_ms)
            gaps += [exchange.longest_gap_ms] if exchange.voice_to_voice_ms is not None else []
            print(f"  {exchange.voice_to_voice_ms} ms, reply {exchange.reply_s:.1f} s "
                  f"(longest gap {exchange.longest_gap_ms:.0f} ms): {question}")  # fmt: skip
    finally:
        stop(agent, pulse)
    return report(options, agent, metrics, at_speaker, idle_cpu, gaps)


def stop(agent: Agent, pulse: PulseServer) -> None:
    """The agent as Ctrl-C would end it (killed if it does not), then the sound server."""
    try:
        agent.process.send_signal(signal.SIGTERM)
        agent.process.wait(timeout=60)
    finally:
        if agent.process.poll() is None:
            agent.process.kill()
        pulse.stop()


def report(
    options: argparse.Namespace,
    agent: Agent,
    metrics: Path,
    at_speaker: list[float | None],
    idle_cpu: float,
    gaps: list[float] | None = None,
) -> dict[str, object]:
    records = (
        [json.loads(line) for line in metrics.read_text().splitlines()] if metrics.exists() else []
    )
    (metrics.parent / "agent.log").write_text("".join(agent.stderr))  # for a turn gone wrong
    assert agent.listening_at is not None
    columns = {stage: [r[stage] for r in records if r[stage] is not None] for stage in STAGES}
    columns["at_the_speaker_ms"] = [value for value in at_speaker if value is not None]
    columns["longest_gap_in_reply_ms"] = gaps or []
    return {
        "turns_asked": options.turns,
        "turns_answered": sum(1 for r in records if r["voice_to_voice_ms"] is not None),
        "replies_heard": len(columns["at_the_speaker_ms"]),
        "cold_start_s": round(agent.listening_at - agent.started, 2),
        "peak_rss_mb": round(agent.peak_rss_mb),
        "idle_cpu_percent": round(idle_cpu, 1),
        "stages": {
            stage: {
                "median": round(statistics.median(values), 1),
                "p90": round(percentile(values, 0.9), 1),
                "n": len(values),
            }
            for stage, values in columns.items()
            if values
        },
        "outcomes": {o: sum(r["outcome"] == o for r in records) for o in outcomes(records)},
        "false_interruptions": sum(r.get("false_interruptions", 0) for r in records),
        "longest_pause_ms": max(gaps) if gaps else None,
        "exit_code": agent.process.returncode,
        "records": str(metrics),
    }


def outcomes(records: list[dict[str, object]]) -> list[object]:
    return list(dict.fromkeys(r["outcome"] for r in records))


def print_report(report: dict[str, object], mode: str) -> None:
    print(f"\nvoice-to-voice benchmark ({mode})")
    print(f"  turns answered   {report['turns_answered']}/{report['turns_asked']}")
    print(f"  cold start       {report['cold_start_s']} s (command -> listening)")
    print(f"  peak RSS         {report['peak_rss_mb']} MB")
    print(f"  CPU while idle   {report['idle_cpu_percent']} % of one core")
    if report.get("longest_pause_ms") is not None:
        print(f"  longest pause    {report['longest_pause_ms']} ms inside a reply")
    print(
        f"  outcomes         {report['outcomes']}, {report['false_interruptions']} resumed pauses"
    )
    print(f"  {'stage':<20}{'median ms':>10}{'p90 ms':>10}{'n':>4}")
    stages = report["stages"]
    assert isinstance(stages, dict)
    for stage, figures in stages.items():
        print(f"  {stage:<20}{figures['median']:>10}{figures['p90']:>10}{figures['n']:>4}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=6, help="questions asked (at most 8)")
    parser.add_argument("--gap_s", type=float, default=10.0, help="silence after each question")
    parser.add_argument(
        "--through_pulse",
        action="store_true",
        help="through a private PulseAudio server instead of WAV replay",
    )
    parser.add_argument(
        "--person",
        action="store_true",
        help="a simulated person through a private PulseAudio server: asks, waits for the whole"
        " reply, asks again; voice-to-voice timed at the speaker",
    )
    parser.add_argument(
        "--portaudio",
        action="store_true",
        help="reach the sound server through PortAudio and ALSA's plugin, not as its client",
    )
    parser.add_argument(
        "--echo",
        action="store_true",
        help="the agent hears its own voice (through a simulated room, cancelled by --aec)",
    )
    parser.add_argument(
        "--busy",
        action="store_true",
        help="keep one core busy with another program, started before the agent",
    )
    parser.add_argument(
        "--out", help="folder for the WAVs, metrics and the agent's log (default: a temp folder)"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("agent_args", nargs="*", help="extra agent flags, after --")
    options = parser.parse_args()
    with BusyCore() if options.busy else contextlib.nullcontext():
        report = run(options)
    if options.json:
        print(json.dumps(report, indent=2))
    else:
        mode = "a person at a PulseAudio device" if options.person else (
            "PulseAudio, fixed gaps" if options.through_pulse else "WAV replay")  # fmt: skip
        print_report(report, mode + (", one core kept busy" if options.busy else ""))
    return 0 if report["turns_answered"] == options.turns else 1


if __name__ == "__main__":
    sys.exit(main())
