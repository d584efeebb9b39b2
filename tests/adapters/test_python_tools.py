"""Plain Python functions as tools: their schemas from type hints, a user's module loaded from
a file (every problem one line), a call checked and run, and the built-ins."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from adapters.builtin_tools import calculate, current_time
from adapters.errors import SetupError
from adapters.python_tools import PythonToolbox, load_module
from domain.tools import ToolCall
from ports.tools import ToolError

MODULE = '''
"""A user's tools."""

def add_minutes(minutes: int, label: str | None = None) -> dict:
    """Adds minutes to a counter."""
    return {"minutes": minutes, "label": label}


def fail() -> str:
    """Always fails."""
    raise RuntimeError("the sensor is unplugged")


def _helper() -> None:
    pass
'''


def module(tmp_path: Path, source: str) -> str:
    path = tmp_path / "my_tools.py"
    path.write_text(source)
    return str(path)


def test_a_modules_public_functions_become_tools_with_schemas(tmp_path: Path) -> None:
    toolbox = PythonToolbox(load_module(module(tmp_path, MODULE)))
    specs = {spec.name: spec for spec in toolbox.specs}
    assert set(specs) == {"add_minutes", "fail"}
    assert specs["add_minutes"].description == "Adds minutes to a counter."
    assert specs["add_minutes"].parameters == {
        "type": "object",
        "properties": {"minutes": {"type": "integer"}, "label": {"type": "string"}},
        "required": ["minutes"],
    }
    assert toolbox.run(ToolCall("add_minutes", {"minutes": 5})) == ('{"minutes": 5, "label": null}')


@pytest.mark.parametrize(("call", "problem"), [
    (ToolCall("add_minutes", {"minutes": "five"}), "must be of type integer"),
    (ToolCall("add_minutes", {}), "missing argument(s): minutes"),
    (ToolCall("fail", {}), "fail failed: the sensor is unplugged"),
    (ToolCall("launch", {}), "no tool named 'launch'"),
    (ToolCall("fail", {"force": True}), "fail failed"),  # an invented argument is left out
])  # fmt: skip
def test_a_call_that_cannot_be_carried_out_is_a_tool_error(
    tmp_path: Path, call: ToolCall, problem: str
) -> None:
    toolbox = PythonToolbox(load_module(module(tmp_path, MODULE)))
    with pytest.raises(ToolError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        toolbox.run(call)


@pytest.mark.parametrize(("source", "problem"), [
    (None, "no such file"),
    ("def broken(:\n", "failed to load: SyntaxError"),
    ("import not_a_module_anywhere\n", "failed to load: ModuleNotFoundError"),
    ("x = 1\n", "defines no public function"),
    ("def f(x):\n    '''Doc.'''\n", "argument x needs a type hint"),
    ("def f(x: set) -> str:\n    '''Doc.'''\n", "argument x needs a type hint"),
    ("from typing import Literal\ndef f(x: Literal[1, 'a']) -> str:\n    '''Doc.'''\n",
     "argument x needs a type hint"),
    ("def f(x: int) -> str:\n    return ''\n", "add a docstring"),
    ("def f(*xs: int) -> str:\n    '''Doc.'''\n", "cannot be described"),
])  # fmt: skip
def test_a_bad_module_is_one_line_at_start_up(
    tmp_path: Path, source: str | None, problem: str
) -> None:
    path = str(tmp_path / "missing.py") if source is None else module(tmp_path, source)
    with pytest.raises(SetupError) as refused:
        PythonToolbox(load_module(path))
    assert problem in str(refused.value) and "\n" not in str(refused.value)


WEATHER = """
from typing import Literal, Optional

def weather(city: str, unit: Literal["c", "f"] = "c", days: Optional[int] = None,
            places: list[str] | None = None) -> dict:
    '''Tells the weather.'''
    return {"city": city, "unit": unit, "days": days}
"""


def test_literals_and_typed_lists_become_enums_and_items(tmp_path: Path) -> None:
    toolbox = PythonToolbox(load_module(module(tmp_path, WEATHER)))
    assert toolbox.specs[0].parameters["properties"] == {
        "city": {"type": "string"},
        "unit": {"type": "string", "enum": ["c", "f"]},
        "days": {"type": "integer"},
        "places": {"type": "array", "items": {"type": "string"}},
    }
    said = toolbox.run(ToolCall("weather", {"city": "Oslo", "days": None}))
    assert said == '{"city": "Oslo", "unit": "c", "days": null}'  # the null left to the default
    with pytest.raises(ToolError, match="must be one of c, f"):
        toolbox.run(ToolCall("weather", {"city": "Oslo", "unit": "kelvin"}))


def test_the_built_ins() -> None:
    assert calculate("17 * 23") == "391"
    assert calculate("15 plus 27") == "42"
    assert "cannot compute" in calculate("open('/etc/passwd')")
    assert str(datetime.date.today().year) in current_time()
    toolbox = PythonToolbox([current_time, calculate])
    assert [spec.name for spec in toolbox.specs] == ["current_time", "calculate"]
    assert toolbox.specs[0].parameters["properties"] == {}


def test_the_readmes_example_module_loads_and_runs() -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "my_tools.py"
    toolbox = PythonToolbox(load_module(str(example)))
    assert [spec.name for spec in toolbox.specs] == ["roll_dice", "fahrenheit"]
    assert toolbox.specs[0].parameters["required"] == []
    assert toolbox.run(ToolCall("fahrenheit", {"celsius": 100})) == "212.0"
    assert 1 <= int(toolbox.run(ToolCall("roll_dice", {"sides": 20}))) <= 20
