"""Are the answers right? Each catalogue model answers spoken-style questions
(benchmarks/answer_questions.py: general knowledge, arithmetic, advice, follow-ups, facts the
user gave asked back, questions it cannot know) through the agent's own path: the llama.cpp
server built by `composition.stages.LLM_BUILDERS` from the resolved flags (the catalogue's
generation settings, the agent's thread plan), the chat window with the agent's system prompt,
streaming, and the RunawayGuard the reply stage applies. The grader is strict: the right fact,
no contradicting one, the user's facts told back as theirs, "I cannot know" where it cannot.

    python -m benchmarks.answer_quality                       # every catalogue model, typed
    python -m benchmarks.answer_quality --spoken              # spoken in espeak-ng voices
    python -m benchmarks.answer_quality --spoken --faster_whisper_stt_model_name base
    python -m benchmarks.answer_quality --models qwen2.5-coder-0.5b --sample
    python -m benchmarks.answer_quality --system_prompt "..."  # try another prompt
    python -m benchmarks.answer_quality --llm_gen_repeat_penalty 1.0  # any agent flag
    python -m benchmarks.answer_quality --tools calculator,timer  # with tools, as the agent

With `--tools` the replies go through the agent's reply stream, which runs the calls (the timers
are set and never said); the questions on the time and the date are left out when the clock is
among the tools, since it then knows them.

With `--spoken` every turn is voiced by one of espeak-ng's voices (benchmarks/espeak_voices.py,
not the agent's own) and transcribed by the recogniser the flags choose, as the agent does at
the end of a turn; the model answers what was heard. A question is heard right when every turn's
transcript is within 25 % word error of what was said (after Whisper's English normaliser).
Per model: heard right, answered right (of those heard right), end to end (right answers of all
questions asked); typed, only the answers. Also the median reply length in characters, time to
the first token and whole-reply time. Each answer goes to benchmarks/results/answer_quality.json
and .md. A model that is not installed is installed first (scripts/install-model.sh), since the
1.5B one is not by default.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from adapters.errors import SetupError
from adapters.model_catalogue import CATALOGUE
from adapters.model_files import catalogue_file
from application.reminders import Reminders
from application.reply_stream import ReplyStream
from application.tool_calls import Toolboxes, ToolRunner
from benchmarks.answer_questions import CLOCK_QUESTIONS, QUESTIONS, Question
from benchmarks.espeak_voices import VOICES, speak
from composition import stages
from composition.config import resolve
from composition.settings import TIMER, chosen_tools, first_request
from composition.stage_settings import llm_settings, stt_settings
from composition.stages import LLM_BUILDERS, STT_BUILDERS, generation_settings, warmed
from domain.chat_window import ChatConfig, ChatWindow
from domain.runaway import RunawayGuard
from ports.language_model import LanguageModel
from ports.speech_to_text import SpeechToText
from ports.tools import Toolbox
from tests.adapters.wer import word_error_rate

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def normalise(text: str) -> str:
    """Lower case, hyphens and punctuation as spaces ("fifty-six" is "fifty six"), digit
    groups joined ("1,000" is "1000")."""
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text.lower())
    return " ".join(re.sub(r"[^\w₂.]+|(?<!\d)\.|\.(?!\d)", " ", text).split())


def contains(text: str, alternative: str) -> bool:
    stem = alternative.rstrip("*")
    ending = r"\w*" if alternative.endswith("*") else ""
    # Whole words and whole numbers: "9" is not in "9.46", nor "12" in "120".
    pattern = rf"(?<!\w)(?<!\d\.){re.escape(stem)}{ending}(?!\w)(?!\.\d)"
    return re.search(pattern, text) is not None


def is_right(reply: str, question: Question) -> bool:
    """Every fact there, and nothing that contradicts it."""
    text = normalise(reply)
    return all(any(contains(text, alt) for alt in group) for group in question.facts) and not any(
        contains(text, wrong) for wrong in question.wrong
    )


@functools.cache
def _whisper_normaliser() -> Callable[[str], str]:
    from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

    return EnglishTextNormalizer({})  # type: ignore[no-untyped-call]


def heard_error(said: str, heard: str) -> float:
    """Word error rate after Whisper's English normaliser: "fifteen" and "15", "colour" and
    "color" are the same words heard."""
    normalise = _whisper_normaliser()
    return word_error_rate(normalise(said), normalise(heard))


class Ear:
    """The agent's recogniser, hearing questions spoken in espeak-ng's voices."""

    HEARD_RIGHT_WER = 0.25

    def __init__(self, stt: SpeechToText) -> None:
        self._stt = stt

    def hear(self, text: str, voice: tuple[str, int]) -> tuple[str, bool, float]:
        """What the recogniser made of `text` spoken in `voice`, whether that is right, and
        the decode's milliseconds."""
        pcm = speak(text, *voice)
        started = time.perf_counter()
        heard = self._stt.transcribe(pcm).text.strip()
        decode_ms = 1000 * (time.perf_counter() - started)
        return heard, heard_error(text, heard) <= self.HEARD_RIGHT_WER, decode_ms


class _Clock:
    def now(self) -> float:
        return time.monotonic()


def ask(
    model: LanguageModel, window: ChatWindow, text: str, tools: ToolRunner | None
) -> dict[str, Any]:
    """One turn as the agent takes it: the request from the chat window, the reply streamed
    (its tool calls run) until it ends or the RunawayGuard stops it, then stored in the
    history."""
    window.add_user(text)
    guard = RunawayGuard()
    reply, first_token_s = "", None
    started = time.perf_counter()
    stream = ReplyStream(model, window.request(), _Clock(), tools)
    for delta in stream.deltas(threading.Event()):
        if first_token_s is None and delta.strip():
            first_token_s = time.perf_counter() - started
        reply += delta
        if guard.feed(delta):
            break
    total_s = time.perf_counter() - started
    stream.cancel()  # a runaway's
    window.add_assistant(reply)
    return {"reply": reply.strip(), "ttft_ms": round(1000 * (first_token_s or total_s)),
            "total_ms": round(1000 * total_s), "runaway": guard.reason,
            "tool_calls": [call.written for call, _ in stream.calls]}  # fmt: skip


def answer(
    model: LanguageModel, system_prompt: str, question: Question, index: int, ear: Ear | None,
    tools: ToolRunner | None = None,
) -> dict[str, Any]:  # fmt: skip
    """One conversation: each turn typed, or spoken in the question's voice and heard."""
    window = ChatWindow(ChatConfig(init_chat_prompt=system_prompt))
    voice = VOICES[index % len(VOICES)]
    turns: list[dict[str, Any]] = []
    heard_right, decode_ms = True, list[float]()
    for text in question.turns:
        if ear is not None:
            text, right, ms = ear.hear(text, voice)
            heard_right, decode_ms = heard_right and right, [*decode_ms, ms]
        turns.append({"heard": text, **ask(model, window, text, tools)})
    judged = turns[-1]
    result = {"question": question.text, "kind": question.kind,
              "right": is_right(judged["reply"], question), **judged,
              "earlier": [(t["heard"], t["reply"]) for t in turns[:-1]]}  # fmt: skip
    if ear is not None:
        result |= {"voice": voice[0], "heard_right": heard_right, "decode_ms": decode_ms}
    return result


def tool_runner(config: Mapping[str, Any]) -> tuple[Toolbox | None, ToolRunner | None]:
    """The adapter's toolbox and the runner of every tool, as the agent wires them."""
    toolbox = stages.toolbox(config["tools"], config["tools_module"])
    timers = Reminders(_Clock()) if TIMER in chosen_tools(config["tools"]) else None
    boxes = [box for box in (toolbox, timers) if box is not None]
    if not boxes:
        return None, None
    return toolbox, ToolRunner(Toolboxes(boxes), config["tool_timeout_s"],
                               config["max_tool_calls"])  # fmt: skip


def run_model(
    name: str,
    argv: Sequence[str],
    system_prompt: str | None,
    questions: Sequence[Question] = QUESTIONS,
    spoken: bool = False,
) -> dict[str, Any]:
    """`system_prompt` None: the agent's own for these flags."""
    config = resolve(["--model_name", name, "--log_level", "warning", *argv])
    toolbox, tools = tool_runner(config)
    prompt = system_prompt or first_request(config)[0].content
    settings = generation_settings(llm_settings(config, toolbox), CATALOGUE.get(name))
    # Opened and warmed up as the agent does; generators: closing one stops its stage (the
    # llama.cpp server).
    resources = [warmed(LLM_BUILDERS[config["llm_backend"]], llm_settings(config, toolbox))]
    if spoken:
        resources.append(warmed(STT_BUILDERS[config["stt"]], stt_settings(config)))
    try:
        stages = [next(resource) for resource in resources]
        model: LanguageModel = stages[0]  # type: ignore[assignment]
        ear = Ear(stages[1]) if spoken else None  # type: ignore[arg-type]
        answers = []
        for index, question in enumerate(questions):
            answers.append(answer(model, prompt, question, index, ear, tools))
            a = answers[-1]
            mark = ("ok " if a["right"] else "BAD") + ("" if a.get("heard_right", True) else "~")
            print(f"  {mark:4} {a['heard'][:60]:<60} {a['reply'][:90]!r}", flush=True)
    finally:
        for resource in resources:
            resource.close()
    right = sum(a["right"] for a in answers)
    return {
        "model": name,
        "ear": hearing_model(config) if spoken else None,
        "beam": config["stt_gen"].get("beam_size", 1) if spoken else None,
        "settings": {k: v for k, v in attrs.asdict(settings).items() if v is not None},
        "right": right,
        "total": len(answers),
        **(hearing_figures(answers) if spoken else {}),
        "median_chars": statistics.median(len(a["reply"]) for a in answers),
        "median_ttft_ms": statistics.median(a["ttft_ms"] for a in answers),
        "median_total_ms": statistics.median(a["total_ms"] for a in answers),
        "runaways": sum(a["runaway"] is not None for a in answers),
        "tool_calls": sum(bool(a["tool_calls"]) for a in answers),
        "by_kind": {
            kind: f"{sum(a['right'] for a in answers if a['kind'] == kind)}/"
            f"{sum(a['kind'] == kind for a in answers)}"
            for kind in dict.fromkeys(a["kind"] for a in answers)
        },
        "answers": answers,
    }


def hearing_model(config: Mapping[str, Any]) -> str:
    from adapters.faster_whisper_stt import default_model

    if config["stt"] != "faster-whisper":
        return str(config["stt_model_name"] or config["stt"])
    named: str | None = config["faster_whisper_stt_model_name"]
    return named or default_model(config["language"])


def hearing_figures(answers: list[dict[str, Any]]) -> dict[str, Any]:
    heard = [a for a in answers if a["heard_right"]]
    return {
        "heard_right": len(heard),
        "answered_right": sum(a["right"] for a in heard),
        "median_decode_ms": statistics.median(ms for a in answers for ms in a["decode_ms"]),
    }


def ensure_installed(name: str) -> None:
    entry = CATALOGUE[name]
    try:
        catalogue_file(entry)
    except SetupError:
        print(f"{name} is not installed: running {entry.install_command}", flush=True)
        subprocess.run(["bash", "scripts/install-model.sh", name], cwd=ROOT, check=True)


def summary_row(m: dict[str, Any]) -> str:
    kinds = ", ".join(f"{k} {v}" for k, v in m["by_kind"].items())
    figures = (
        f"{m['median_chars']:.0f} | {m['median_ttft_ms']:.0f} | {m['median_total_ms']:.0f} | "
        f"{m['runaways']} | {kinds} |"
    )
    if m["ear"] is None:
        return f"| {m['model']} | **{m['right']}/{m['total']}** | {figures}"
    return (
        f"| {m['model']} | {m['ear']}, beam {m['beam']} | {m['heard_right']}/{m['total']} | "
        f"{m['answered_right']}/{m['heard_right']} | **{m['right']}/{m['total']}** | "
        f"{m['median_decode_ms']:.0f} | {figures}"
    )


def markdown(report: dict[str, Any]) -> str:
    spoken = report["spoken"]
    head = (
        "| model | ear | heard right | answered right (of heard) | end to end | "
        "median decode (ms) |"
        if spoken
        else "| model | right |"
    )
    lines = [
        "# Answer quality",
        "",
        f"{report['questions']} questions (benchmarks/answer_questions.py), "
        f"{'spoken in espeak-ng voices' if spoken else 'typed'}, "
        f"`{report['command']}`, {report['when']}, load average {report['load']} "
        f"({report['cores']} cores).",
        "",
        f"System prompt: {report['system_prompt']!r}",
        "",
        f"{head} median reply (chars) | median TTFT (ms) | median reply (ms) | runaways | "
        "by kind |",
        "|---" * (head.count("|") + 4) + "|",
        *(summary_row(m) for m in report["models"]),
    ]
    for m in report["models"]:
        lines += ["", f"## {m['model']} ({m['right']}/{m['total']}), settings {m['settings']}", ""]
        lines += ["| | question | heard | answer |", "|---|---|---|---|"]
        for a in m["answers"]:
            answer = a["reply"].replace("\n", " ").replace("|", "\\|")
            heard = a["heard"] if a.get("heard_right", True) else f"~ {a['heard']}"
            lines.append(f"| {'✓' if a['right'] else '✗'} | {a['question']} | {heard} | {answer} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(CATALOGUE),
                        help="catalogue models to ask, comma-separated")  # fmt: skip
    parser.add_argument("--sample", action="store_true",
                        help="sample with the authors' settings, not greedily")  # fmt: skip
    parser.add_argument("--system_prompt", default=None,
                        help="default: the agent's own for the flags given")  # fmt: skip
    parser.add_argument("--limit", type=int, default=None, help="ask only the first N")
    parser.add_argument("--kinds", default="",
                        help="ask only these kinds, comma-separated (e.g. unknowable)")  # fmt: skip
    parser.add_argument("--spoken", action="store_true",
                        help="speak each question in an espeak-ng voice and answer what the "
                        "recogniser heard")  # fmt: skip
    parser.add_argument("--output", default="answer_quality",
                        help="file stem under benchmarks/results/")  # fmt: skip
    # Anything else is an agent flag, e.g. --llm_gen_repeat_penalty 1.0 or --llm_threads 2.
    args, agent_flags = parser.parse_known_args(argv)
    if args.spoken and shutil.which("espeak-ng") is None:
        print("error: --spoken needs espeak-ng: run `bash scripts/setup.sh all,dev`",
              file=sys.stderr)  # fmt: skip
        return 2
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    extra = [*agent_flags, *(["--llm_gen_do_sample"] if args.sample else [])]
    kinds = {k.strip() for k in args.kinds.split(",") if k.strip()}
    knows_the_time = "time" in chosen_tools(resolve(agent_flags)["tools"])
    questions = [q for q in QUESTIONS if (not kinds or q.kind in kinds)
                 and not (knows_the_time and q.text in CLOCK_QUESTIONS)][: args.limit]  # fmt: skip
    load_before = os.getloadavg()[0]
    report: dict[str, Any] = {
        "command": "python -m benchmarks.answer_quality " + " ".join(sys.argv[1:]),
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cores": os.cpu_count(),
        "questions": len(questions),
        "system_prompt": args.system_prompt or first_request(resolve(agent_flags))[0].content,
        "spoken": args.spoken,
        "models": [],
    }
    for name in names:
        ensure_installed(name)
        print(f"{name}:", flush=True)
        result = run_model(name, extra, args.system_prompt, questions, args.spoken)
        report["models"].append(result)
        if args.spoken:
            print(f"{name}: heard right {result['heard_right']}/{result['total']}, answered "
                  f"right {result['answered_right']}/{result['heard_right']}, median decode "
                  f"{result['median_decode_ms']:.0f} ms")  # fmt: skip
        print(f"{name}: {result['right']}/{result['total']} right, median "
              f"{result['median_chars']:.0f} chars, TTFT {result['median_ttft_ms']:.0f} ms, "
              f"reply {result['median_total_ms']:.0f} ms, runaways {result['runaways']}, "
              f"replies that called a tool {result['tool_calls']}",
              flush=True)  # fmt: skip
    report["load"] = f"{load_before:.1f} -> {os.getloadavg()[0]:.1f}"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.output}.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / f"{args.output}.md").write_text(markdown(report))
    print(f"wrote benchmarks/results/{args.output}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
