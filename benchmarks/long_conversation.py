"""A long spoken conversation: a simulated person at the private PulseAudio server says who they
are, asks for thirty long answers in a row ("Tell me about volcanoes."), listening to each whole,
then asks what their name is. Does the agent keep its pace as the history grows and is
summarised, and does it still know the name?

Per turn: the time at the speaker, the model's time to its first token, the longest silence
inside the reply (a stall long enough to be taken for the end), and whether it was answered
whole. The last five questions are the first five again, so that their figures are set against
the same questions asked with a short history (how soon a reply can start depends on how it
opens: "Octopuses are" cannot be cut before its verb, "The moon | is" can).

    .venv/bin/python -m benchmarks.long_conversation                # 30 answers, the default
    .venv/bin/python -m benchmarks.long_conversation --turns 10 -- --chat_size 4
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from benchmarks.voice_to_voice import Agent, BusyCore, count_lines, percentile, stop

INTRODUCTION = "My name is Maria and I live in Lisbon."
TOPICS = (
    "volcanoes", "the Roman empire", "honey bees", "the moon", "jazz music", "glaciers",
    "the printing press", "octopuses", "rainforests", "the Olympic games", "chess", "coffee",
    "the Great Wall of China", "electric cars", "whales", "the piano", "deserts",
    "Mount Everest", "bread", "the internet", "penguins", "the Eiffel Tower", "tea",
    "lightning", "dinosaurs",
)  # fmt: skip
CLOSING = "What is my name, and where do I live?"
STALL_MS = 1500  # a silence this long inside a reply is taken for its end
EDGE = 5  # turns compared at each end


def spoken(texts: list[str]) -> list[bytes]:
    """Each text in the Piper voice, the same audio on every run (its noise pinned)."""
    from adapters.piper_tts import PiperTextToSpeech

    tts = PiperTextToSpeech(noise_scale=0.0, noise_w_scale=0.0)
    return [b"".join(tts.synthesize(text, "en")) for text in texts]


def run(options: argparse.Namespace) -> dict[str, object]:
    from benchmarks.simulated_user import SimulatedUser
    from tests.adapters.pulse_server import PulseServer

    work = Path(options.out or tempfile.mkdtemp(prefix="long-talk-"))
    work.mkdir(parents=True, exist_ok=True)
    metrics = work / "turns.jsonl"
    metrics.unlink(missing_ok=True)
    asked = [TOPICS[i % len(TOPICS)] for i in range(options.turns - EDGE)] + list(TOPICS[:EDGE])
    texts = [INTRODUCTION, *(f"Tell me about {topic}." for topic in asked), CLOSING]
    speech = spoken(texts)  # before the agent starts: synthesising is another program's load
    pulse = PulseServer(work)
    pulse.start()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PULSE_SERVER": pulse.server}
    agent = Agent(["--audio_api", "pulse", "--metrics_jsonl", str(metrics), "--log_level",
                   "warning", *options.agent_args], env)  # fmt: skip
    turns: list[dict[str, object]] = []
    try:
        if not agent.listening.wait(300):
            raise RuntimeError("the agent never started listening:\n" + "".join(agent.stderr))
        user = SimulatedUser(pulse, lambda: count_lines(metrics))
        for n, (text, pcm) in enumerate(zip(texts, speech, strict=True)):
            exchange = user.ask(text, pcm)
            turns.append({"turn": n, "question": text, "at_speaker_ms": exchange.voice_to_voice_ms,
                          "reply_s": round(exchange.reply_s, 1),
                          "longest_gap_ms": exchange.longest_gap_ms})  # fmt: skip
            print(f"  {n:2d} {exchange.voice_to_voice_ms} ms, reply {exchange.reply_s:.1f} s, "
                  f"longest gap {exchange.longest_gap_ms:.0f} ms: {text}", flush=True)  # fmt: skip
    finally:
        stop(agent, pulse)
        (work / "agent.log").write_text("".join(agent.stderr))
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    for turn, record in zip(turns, records, strict=False):
        turn.update(llm_ttft_ms=record["llm_ttft_ms"], outcome=record["outcome"],
                    answer=record["assistant_text"])  # fmt: skip
    return report(turns, agent)


def report(turns: list[dict[str, object]], agent: Agent) -> dict[str, object]:
    answers = turns[1:-1]  # the long answers, between the introduction and the closing question

    def figures(part: list[dict[str, object]], key: str) -> dict[str, float] | None:
        values = [float(v) for t in part if isinstance(v := t.get(key), int | float)]
        if not values:
            return None
        return {"median": round(statistics.median(values), 1),
                "p90": round(percentile(values, 0.9), 1), "max": round(max(values), 1)}  # fmt: skip

    return {
        "long_answers": len(answers),
        "answered_whole": sum(t.get("outcome") == "answered" for t in answers),
        "stalls": sum(float(str(t["longest_gap_ms"])) > STALL_MS for t in answers),
        "cold_start_s": round((agent.listening_at or agent.started) - agent.started, 2),
        "peak_rss_mb": round(agent.peak_rss_mb),
        "first": {k: figures(answers[:EDGE], k)
                  for k in ("at_speaker_ms", "llm_ttft_ms", "longest_gap_ms")},
        "last": {k: figures(answers[-EDGE:], k)
                 for k in ("at_speaker_ms", "llm_ttft_ms", "longest_gap_ms")},
        "all": {k: figures(answers, k) for k in ("at_speaker_ms", "llm_ttft_ms", "longest_gap_ms")},
        "closing_answer": turns[-1].get("answer"),
        "turns": turns,
    }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=30, help="long answers asked for")
    parser.add_argument("--busy", action="store_true", help="one core kept busy beside it")
    parser.add_argument("--out", help="folder for the metrics and the agent's log")
    parser.add_argument("agent_args", nargs="*", help="extra agent flags, after --")
    options = parser.parse_args()
    with BusyCore() if options.busy else contextlib.nullcontext():
        result = run(options)
    summary = {k: v for k, v in result.items() if k != "turns"}
    print(json.dumps(summary, indent=2))
    return 0 if result["answered_whole"] == result["long_answers"] else 1


if __name__ == "__main__":
    sys.exit(main())
