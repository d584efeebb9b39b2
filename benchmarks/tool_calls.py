"""How well each catalogue model uses the built-in tools, on the agent's own reply path: the
embedded llama.cpp server with the model, the system prompt and the tools `--tools
time,calculator,timer` gives, and the reply stream that runs the calls
(application/reply_stream.py).

    python -m benchmarks.tool_calls [--models qwen2.5-coder-0.5b,qwen2.5-coder-1.5b] [--without]
                                    [--tools time,calculator,timer]

Each question is asked in a conversation of its own. For the questions that need a tool: the
right tool called, with the right arguments (the expression computes the right number), and
the answer right (it holds the number, or the minute, weekday or day of the month the clock
gave; for a timer, the timer was set for the right time, and the answer says so). For the
questions that need none (and those whose tool `--tools` leaves out): how many called one.
"""

from __future__ import annotations

import argparse
import datetime
import threading
import time
from collections.abc import Callable

import attrs

from adapters.builtin_tools import calculate, current_time
from adapters.python_tools import PythonToolbox
from application.reminders import Reminders
from application.reply_stream import ReplyStream
from application.tool_calls import Toolboxes, ToolRunner
from domain.arithmetic import NotArithmetic, evaluate
from domain.messages import ChatMessage
from domain.timers import duration_s
from domain.tools import ToolCall


@attrs.frozen
class Needs:
    question: str
    tool: str
    right_arguments: Callable[[ToolCall], bool]
    right_answer: Callable[[str], bool]
    acts: bool = False  # the answer is right only if the call was made, with the right arguments


def computes(value: float) -> Callable[[ToolCall], bool]:
    def check(call: ToolCall) -> bool:
        try:
            return evaluate(str(call.arguments.get("expression", ""))) == value
        except NotArithmetic:
            return False

    return check


def says(*words: str) -> Callable[[str], bool]:
    return lambda answer: any(word.lower() in answer.lower() for word in words)


def says_the_clock(part: str) -> Callable[[str], bool]:
    """The answer holds the hour ("19:" or "7:"), the weekday or the day of the month, as the
    clock is when it is checked."""

    def check(answer: str) -> bool:
        now = datetime.datetime.now().astimezone()
        words = {"hour": (f"{now:%H}:", f"{now.hour % 12 or 12}:"), "weekday": (f"{now:%A}",),
                 "day": (f" {now.day} ", f" {now.day}th", f" {now:%d} ")}[part]  # fmt: skip
        return says(*words)(answer)

    return check


def any_arguments(call: ToolCall) -> bool:
    return True


def lasts(seconds: int) -> Callable[[ToolCall], bool]:
    def check(call: ToolCall) -> bool:
        try:
            return duration_s(str(call.arguments.get("duration", ""))) == seconds
        except ValueError:
            return False

    return check


def timer(question: str, seconds: int) -> Needs:
    return Needs(question, "set_timer", lasts(seconds), says("set", "remind", "will"), acts=True)


def needing() -> list[Needs]:
    return [
        Needs("What time is it?", "current_time", any_arguments, says_the_clock("hour")),
        Needs(
            "What day of the week is it today?",
            "current_time",
            any_arguments,
            says_the_clock("weekday"),
        ),
        Needs("What is the date today?", "current_time", any_arguments, says_the_clock("day")),
        Needs(
            "Could you tell me the time, please?",
            "current_time",
            any_arguments,
            says_the_clock("hour"),
        ),
        Needs("What is 17 times 23?", "calculate", computes(391), says("391")),
        Needs("What is seventeen times twenty three?", "calculate", computes(391), says("391")),
        Needs(
            "What is fifteen plus twenty seven?",
            "calculate",
            computes(42),
            says("42", "forty-two", "forty two"),
        ),
        Needs("What is 144 divided by 12?", "calculate", computes(12), says("12", "twelve")),
        Needs(
            "How much is 2 to the power of 10?", "calculate", computes(1024), says("1024", "1,024")
        ),
        Needs("What is 1234 minus 567?", "calculate", computes(667), says("667", "six hundred")),
        timer("Set a timer for ten seconds.", 10),
        timer("Set a timer for five minutes, please.", 300),
        timer("Remind me in two minutes to check the oven.", 120),
        timer("Can you start a thirty second timer?", 30),
        timer("Set an alarm for 20 minutes from now.", 1200),
        timer("Remind me to call my mother in an hour.", 3600),
        timer("Give me a one minute countdown.", 60),
        timer("In fifteen minutes, remind me to take the pizza out.", 900),
    ]


NEEDING_NONE = (
    "What is the capital of France?", "Who wrote Hamlet?", "How many legs does a spider have?",
    "Tell me a joke.", "What colour is the sky on a clear day?",
    "Give me a tip for sleeping better.", "What is the largest planet in our solar system?",
    "Name a famous painter.", "At what temperature does water boil in Celsius?",
    "Why do leaves change colour in autumn?", "How long should I boil an egg?",
    "What is a kitchen timer?", "How many minutes are in an hour?",
)  # fmt: skip


def ask(
    llm: object, runner: ToolRunner | None, system: str, question: str
) -> tuple[str, list[ToolCall]]:
    request = [ChatMessage("system", system), ChatMessage("user", question)]
    stream = ReplyStream(llm, request, _Clock(), runner)  # type: ignore[arg-type]
    try:
        answer = "".join(stream.deltas(threading.Event()))
    except Exception as error:  # a failed reply is a wrong answer, not the end of the run
        answer = f"[failed: {error}]"
    return answer, [call for call, _ in stream.calls]


class _Clock:
    def now(self) -> float:
        return time.monotonic()


# The tool each of `--tools`' built-ins offers.
TOOL_OF = {"time": "current_time", "calculator": "calculate", "timer": "set_timer"}


def run(model: str, chosen: str) -> None:
    from composition import stages
    from composition.config import resolve
    from composition.settings import chosen_tools, first_request
    from composition.stage_settings import llm_settings

    config = resolve(["--tools", chosen, "--model_name", model], environ={})
    offered = {TOOL_OF[name] for name in chosen_tools(chosen)}
    # As the agent is wired: the built-ins, which the model's adapter is given (with the
    # timer's spec, as `--tools timer` asks), and the conversation's own timers.
    functions = [f for f in (current_time, calculate) if f.__name__ in offered]
    builtins = PythonToolbox(functions) if functions else None
    boxes = [box for box in (builtins, Reminders(_Clock()) if "set_timer" in offered else None)
             if box is not None]  # fmt: skip
    runner = (
        ToolRunner(Toolboxes(boxes), config["tool_timeout_s"], config["max_tool_calls"])
        if boxes else None
    )  # fmt: skip
    system = first_request(config)[0].content
    builder = stages.llama_cpp(llm_settings(config, builtins))
    llm = next(builder)
    try:
        llm.warm_up()
        tool = arguments = answered = 0
        needs_offered = [needs for needs in needing() if needs.tool in offered or not offered]
        needing_none = [*NEEDING_NONE, *(needs.question for needs in needing()
                                         if offered and needs.tool not in offered)]  # fmt: skip
        for needs in needs_offered:
            answer, calls = ask(llm, runner, system, needs.question)
            right_tool = bool(calls) and calls[0].name == needs.tool
            right_arguments = right_tool and needs.right_arguments(calls[0])
            right = needs.right_answer(answer) and (right_arguments or not needs.acts)
            tool, arguments, answered = tool + right_tool, arguments + right_arguments, (
                answered + right)  # fmt: skip
            print(f"  {needs.question!r}: {[c.written for c in calls]} -> {answer!r} "
                  f"{'right' if right else 'WRONG'}", flush=True)  # fmt: skip
        false_calls = 0
        for question in needing_none:
            answer, calls = ask(llm, runner, system, question)
            false_calls += bool(calls)
            print(f"  {question!r}: {[c.written for c in calls]} -> {answer!r}", flush=True)
        total = len(needs_offered)
        print(f"{model}, --tools {chosen}: right tool {tool}/{total}, right arguments "
              f"{arguments}/{total}, answer right {answered}/{total}; false calls "
              f"{false_calls}/{len(needing_none)}")  # fmt: skip
    finally:
        builder.close()  # type: ignore[attr-defined]  # a generator: its finally closes the model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="qwen2.5-coder-0.5b,qwen2.5-coder-1.5b")
    parser.add_argument("--tools", default="time,calculator,timer", help="the built-ins offered")
    parser.add_argument(
        "--without",
        action="store_true",
        help="also each model without tools: what they answer on their own",
    )
    args = parser.parse_args()
    for model in args.models.split(","):
        for chosen in (args.tools, "none") if args.without else (args.tools,):
            run(model, chosen)


if __name__ == "__main__":
    main()
