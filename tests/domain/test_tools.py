"""Tool calls in a streamed reply, their arguments against the schema, and arithmetic."""

import pytest

from domain.arithmetic import NotArithmetic, evaluate
from domain.tools import (
    BadArguments,
    CallWatch,
    ToolCall,
    ToolSpec,
    fitted_arguments,
    parse_call,
    spoken_result,
)

CALCULATE = ToolSpec(
    "calculate", "Arithmetic.",
    {"type": "object", "properties": {"expression": {"type": "string"}},
     "required": ["expression"]},
)  # fmt: skip


def watch(deltas: list[str]) -> tuple[str, ToolCall | None, str]:
    """What was said while streaming, the call, and the text held to the end."""
    reading = CallWatch(offered=True)
    said = "".join(reading.feed(delta) for delta in deltas)
    call, rest = reading.finish()
    return said, call, rest


@pytest.mark.parametrize("written", [
    '<tool_call>{"name": "calculate", "arguments": {"expression": "17 * 23"}}</tool_call>',
    '{"name": "calculate", "arguments": {"expression": "17 * 23"}}',  # bare, as the 0.5B writes
    '  {"name": "calculate", "parameters": {"expression": "17 * 23"}}\n',
    '{"name": "calculate", "arguments": "{\\"expression\\": \\"17 * 23\\"}"}',  # OpenAI's string
    '{"name": "calculate", "arguments": {"expression": "17 * 23"}',  # its last brace dropped
    '{"name": "calculate", "arguments": {"expression": "17 * 23"}}\n{"name": "calculate"',
    '{{"name": "calculate", "arguments": {"expression": "17 * 23"}}}}',  # as the 1.5B writes
    '```json\n{"name": "calculate", "arguments": {"expression": "17 * 23"}}\n```',
    '<tools></tools>\n{{"name": "calculate", "arguments": {"expression": "17 * 23"}}}\n```',
    '<tools>\n{"name": "calculate", "arguments": {"expression": "17 * 23"}}\n</tools>',  # 1.5B
])  # fmt: skip
def test_a_call_is_read_tagged_or_bare(written: str) -> None:
    assert parse_call(written) == ToolCall("calculate", {"expression": "17 * 23"})


def test_a_call_to_a_tool_that_does_not_exist_is_still_a_call() -> None:
    """Not said aloud: the toolbox answers that there is no such tool."""
    assert parse_call('{"name": "set_timer", "arguments": {"seconds": 10}}') == ToolCall(
        "set_timer", {"seconds": 10}
    )


@pytest.mark.parametrize("text", [
    '{"name": "calculate", "arguments": 3}', '{"answer": 391}', "{not json",
    "The answer is 391.", "",
])  # fmt: skip
def test_anything_else_is_no_call(text: str) -> None:
    assert parse_call(text) is None


def test_an_empty_list_of_tools_says_nothing() -> None:
    """The 1.5B's whole reply, now and then: neither a call nor words to say."""
    assert watch(["<tools>", "</tools>"]) == ("", None, "")


def test_a_call_streamed_in_pieces_is_held_back_and_read_at_the_end() -> None:
    said, call, rest = watch(['<tool', '_call>{"name": "current_time", ', '"arguments": {}}',
                              "</tool_call>"])  # fmt: skip
    assert (said, call, rest) == ("", ToolCall("current_time", {}), "")


def test_plain_text_goes_on_at_once() -> None:
    reading = CallWatch(offered=True)
    assert reading.feed(" It") == " It"
    assert reading.feed(" is noon.") == " is noon."
    assert reading.finish() == (None, "")


def test_text_that_only_looked_like_a_call_is_said_at_the_end() -> None:
    assert watch(["{1, 2}", " is a set."]) == ("", None, "{1, 2} is a set.")


@pytest.mark.parametrize(("deltas", "sure"), [
    (["<tool_", "call>"], [False, True]),
    (["{", '"name"', ": "], [False, False, True]),
    (["  {", ' "name" ', ':"calc'], [False, False, True]),
    (["{", '"answer": 1}'], [False, False]),
    (["{1, 2}"], [False]),
])  # fmt: skip
def test_a_call_is_known_for_sure_as_soon_as_its_start_says_so(
    deltas: list[str], sure: list[bool]
) -> None:
    reading = CallWatch(offered=True)
    seen = []
    for delta in deltas:
        reading.feed(delta)
        seen.append(reading.calling)
    assert seen == sure


def test_without_tools_nothing_is_held() -> None:
    reading = CallWatch(offered=False)
    assert reading.feed('{"name": "x"}') == '{"name": "x"}'


@pytest.mark.parametrize(("arguments", "problem"), [
    ({}, "missing argument(s): expression"),
    ({"expression": 3}, "argument 'expression' must be of type string"),
])  # fmt: skip
def test_arguments_that_do_not_fit_the_schema_are_refused(
    arguments: dict[str, object], problem: str
) -> None:
    with pytest.raises(BadArguments) as refused:
        fitted_arguments(CALCULATE, arguments)
    assert str(refused.value) == problem


def test_arguments_the_schema_does_not_know_are_left_out() -> None:
    assert fitted_arguments(CALCULATE, {"expression": "1", "unit": "m"}) == {"expression": "1"}


def test_a_boolean_is_no_number() -> None:
    spec = ToolSpec("t", "", {"properties": {"n": {"type": "integer"}}})
    with pytest.raises(BadArguments):
        fitted_arguments(spec, {"n": True})
    assert fitted_arguments(spec, {"n": 3}) == {"n": 3}


def test_a_value_outside_a_literal_is_refused_and_a_null_left_out_unless_required() -> None:
    spec = ToolSpec("weather", "", {
        "properties": {"city": {"type": "string"},
                       "unit": {"type": "string", "enum": ["c", "f"]},
                       "days": {"type": "integer"}},
        "required": ["city"],
    })  # fmt: skip
    with pytest.raises(BadArguments, match="argument 'unit' must be one of c, f"):
        fitted_arguments(spec, {"city": "Paris", "unit": "kelvin"})
    assert fitted_arguments(spec, {"city": "Paris", "days": None}) == {"city": "Paris"}
    with pytest.raises(BadArguments, match="argument 'city' must be of type string"):
        fitted_arguments(spec, {"city": None})


@pytest.mark.parametrize(("result", "said"), [
    ('{"city": "Paris", "temp_c": 21, "sunny": true}', "city Paris, temp c 21, sunny yes"),
    ('[1, 2, {"a": null}]', "1, 2, a none"),
    ("391", "391"),
    ('"quoted"', '"quoted"'),
    ("It is 5 pm.", "It is 5 pm."),
])  # fmt: skip
def test_a_result_said_as_the_answer_is_words_not_json(result: str, said: str) -> None:
    assert spoken_result(result) == said


@pytest.mark.parametrize(("expression", "value"), [
    ("17 * 23", 391), ("15 plus 27", 42), ("17 times 23", 391), ("(2 + 3) ** 2", 25),
    ("7 / 2", 3.5), ("10 divided by 4", 2.5), ("-3 + 1", -2), ("2^10", 1024),
    ("1,000 + 1", 1001), ("What is 6 * 7?", None),
])  # fmt: skip
def test_arithmetic(expression: str, value: float | None) -> None:
    if value is None:
        with pytest.raises(NotArithmetic):
            evaluate(expression)
    else:
        assert evaluate(expression) == value


@pytest.mark.parametrize("expression", [
    "9 ** 9 ** 9", "1 / 0", "__import__('os').system('true')", "x + 1", "[1] * 3",
    "1" * 300, "10 ** 200",
])  # fmt: skip
def test_what_is_not_safe_arithmetic_is_refused(expression: str) -> None:
    with pytest.raises(NotArithmetic):
        evaluate(expression)
