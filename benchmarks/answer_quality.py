"""Are the answers right? Each catalogue model answers short spoken-style questions
(benchmarks/answer_questions.py) through the agent's own path: the llama.cpp server built by
`composition.stages.LLM_BACKENDS` from the resolved flags (the catalogue's generation settings,
the agent's thread plan), the chat window with the agent's system prompt, streaming, and the
RunawayGuard the reply stage applies.

    python -m benchmarks.answer_quality                       # every catalogue model
    python -m benchmarks.answer_quality --models qwen2.5-coder-0.5b --sample
    python -m benchmarks.answer_quality --system_prompt "..."  # try another prompt
    python -m benchmarks.answer_quality --llm_gen_repeat_penalty 1.0  # any agent flag

Per model: right answers / questions, median reply length in characters, median time to the
first token, median whole-reply time. Each answer goes to benchmarks/results/answer_quality.json
and .md. A model that is not installed is installed first (scripts/install-model.sh), since the
1.5B one is not by default.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from adapters.errors import SetupError
from adapters.model_catalogue import CATALOGUE
from adapters.model_files import catalogue_file
from benchmarks.answer_questions import QUESTIONS, Question
from composition.config import resolve
from composition.stages import LLM_BACKENDS, generation_settings, warmed
from domain.chat_window import DEFAULT_SYSTEM_PROMPT, ChatConfig, ChatWindow
from domain.runaway import RunawayGuard
from ports.language_model import LanguageModel

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
    text = normalise(reply)
    return all(any(contains(text, alt) for alt in group) for group in question.facts)


def ask(model: LanguageModel, window: ChatWindow, text: str) -> dict[str, Any]:
    """One turn as the agent takes it: the request from the chat window, the reply streamed
    until it ends or the RunawayGuard stops it, then stored in the history."""
    window.add_user(text)
    guard = RunawayGuard()
    reply, first_token_s = "", None
    started = time.perf_counter()
    for delta in model.stream(window.request(), threading.Event()):
        if first_token_s is None and delta.strip():
            first_token_s = time.perf_counter() - started
        reply += delta
        if guard.feed(delta):
            break
    total_s = time.perf_counter() - started
    window.add_assistant(reply)
    return {"reply": reply.strip(), "ttft_ms": round(1000 * (first_token_s or total_s)),
            "total_ms": round(1000 * total_s), "runaway": guard.reason}  # fmt: skip


def run_model(
    name: str, argv: Sequence[str], system_prompt: str, questions: Sequence[Question] = QUESTIONS
) -> dict[str, Any]:
    config = resolve(["--model_name", name, "--log_level", "warning", *argv])
    settings = generation_settings(config, CATALOGUE.get(name))
    # Opened and warmed up as the agent does; a generator: closing it stops the llama.cpp server.
    resource = warmed(LLM_BACKENDS[config["llm_backend"]].build, config)
    model: LanguageModel = next(resource)  # type: ignore[assignment]
    try:
        answers = []
        for question in questions:
            window = ChatWindow(ChatConfig(init_chat_prompt=system_prompt))
            turns = [ask(model, window, text) for text in question.turns]
            judged = turns[-1]
            answers.append({"question": question.text, "kind": question.kind,
                            "right": is_right(judged["reply"], question), **judged,
                            "earlier_replies": [t["reply"] for t in turns[:-1]]})  # fmt: skip
            mark = "ok " if answers[-1]["right"] else "BAD"
            print(f"  {mark} {question.text[:60]:<60} {judged['reply'][:90]!r}", flush=True)
    finally:
        resource.close()
    right = sum(a["right"] for a in answers)
    return {
        "model": name,
        "settings": {k: v for k, v in attrs.asdict(settings).items() if v is not None},
        "right": right,
        "total": len(answers),
        "median_chars": statistics.median(len(a["reply"]) for a in answers),
        "median_ttft_ms": statistics.median(a["ttft_ms"] for a in answers),
        "median_total_ms": statistics.median(a["total_ms"] for a in answers),
        "runaways": sum(a["runaway"] is not None for a in answers),
        "by_kind": {
            kind: f"{sum(a['right'] for a in answers if a['kind'] == kind)}/"
            f"{sum(a['kind'] == kind for a in answers)}"
            for kind in dict.fromkeys(a["kind"] for a in answers)
        },
        "answers": answers,
    }


def ensure_installed(name: str) -> None:
    entry = CATALOGUE[name]
    try:
        catalogue_file(entry)
    except SetupError:
        print(f"{name} is not installed: running {entry.install_command}", flush=True)
        subprocess.run(["bash", "scripts/install-model.sh", name], cwd=ROOT, check=True)


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Answer quality",
        "",
        f"{report['questions']} questions (benchmarks/answer_questions.py), "
        f"`{report['command']}`, {report['when']}, load average {report['load']} "
        f"({report['cores']} cores).",
        "",
        f"System prompt: {report['system_prompt']!r}",
        "",
        "| model | right | median reply (chars) | median TTFT (ms) | median reply (ms) | "
        "runaways | by kind |",
        "|---|---|---|---|---|---|---|",
    ]
    for m in report["models"]:
        kinds = ", ".join(f"{k} {v}" for k, v in m["by_kind"].items())
        lines.append(
            f"| {m['model']} | **{m['right']}/{m['total']}** | {m['median_chars']:.0f} | "
            f"{m['median_ttft_ms']:.0f} | {m['median_total_ms']:.0f} | {m['runaways']} | "
            f"{kinds} |"
        )
    for m in report["models"]:
        lines += ["", f"## {m['model']} ({m['right']}/{m['total']}), settings {m['settings']}", ""]
        lines += ["| | question | answer |", "|---|---|---|"]
        for a in m["answers"]:
            answer = a["reply"].replace("\n", " ").replace("|", "\\|")
            lines.append(f"| {'✓' if a['right'] else '✗'} | {a['question']} | {answer} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(CATALOGUE),
                        help="catalogue models to ask, comma-separated")  # fmt: skip
    parser.add_argument("--sample", action="store_true",
                        help="sample with the authors' settings, not greedily")  # fmt: skip
    parser.add_argument("--system_prompt", default=DEFAULT_SYSTEM_PROMPT)
    parser.add_argument("--limit", type=int, default=None, help="ask only the first N")
    parser.add_argument("--output", default="answer_quality",
                        help="file stem under benchmarks/results/")  # fmt: skip
    # Anything else is an agent flag, e.g. --llm_gen_repeat_penalty 1.0 or --llm_threads 2.
    args, agent_flags = parser.parse_known_args(argv)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    extra = [*agent_flags, *(["--llm_gen_do_sample"] if args.sample else [])]
    load_before = os.getloadavg()[0]
    report: dict[str, Any] = {
        "command": "python -m benchmarks.answer_quality " + " ".join(sys.argv[1:]),
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cores": os.cpu_count(),
        "questions": len(QUESTIONS[: args.limit]),
        "system_prompt": args.system_prompt,
        "models": [],
    }
    for name in names:
        ensure_installed(name)
        print(f"{name}:", flush=True)
        result = run_model(name, extra, args.system_prompt, QUESTIONS[: args.limit])
        report["models"].append(result)
        print(f"{name}: {result['right']}/{result['total']} right, median "
              f"{result['median_chars']:.0f} chars, TTFT {result['median_ttft_ms']:.0f} ms, "
              f"reply {result['median_total_ms']:.0f} ms, runaways {result['runaways']}",
              flush=True)  # fmt: skip
    report["load"] = f"{load_before:.1f} -> {os.getloadavg()[0]:.1f}"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.output}.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / f"{args.output}.md").write_text(markdown(report))
    print(f"wrote benchmarks/results/{args.output}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
