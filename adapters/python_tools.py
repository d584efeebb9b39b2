"""Plain Python functions as the model's tools: each function's type hints become the JSON
schema of its arguments, its docstring the description the model reads. Used for the built-in
tools and for a user's own module (`--tools_module my_tools.py`), whose problems are one line
at start-up."""

from __future__ import annotations

import importlib.util
import inspect
import json
import sys
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from adapters.errors import SetupError
from domain.tools import BadArguments, ToolCall, ToolSpec, fitted_arguments
from ports.tools import ToolError

_JSON_TYPES: dict[Any, str] = {
    str: "string", int: "integer", float: "number", bool: "boolean", list: "array",
    dict: "object",
}  # fmt: skip


class PythonToolbox:
    def __init__(self, functions: Sequence[Callable[..., Any]]) -> None:
        self._functions = {function.__name__: function for function in functions}
        self._specs = {name: spec_of(function) for name, function in self._functions.items()}

    @property
    def specs(self) -> Sequence[ToolSpec]:
        return list(self._specs.values())

    def run(self, call: ToolCall) -> str:
        spec = self._specs.get(call.name)
        if spec is None:
            raise ToolError(f"there is no tool named {call.name!r}")
        try:
            arguments = fitted_arguments(spec, call.arguments)
        except BadArguments as problem:
            raise ToolError(f"{call.name}: {problem}") from None
        try:
            result = self._functions[call.name](**arguments)
        except Exception as error:  # the tool's own failure is the model's to hear about
            raise ToolError(f"{call.name} failed: {error}") from error
        return result if isinstance(result, str) else json.dumps(result, default=str)


def spec_of(function: Callable[..., Any]) -> ToolSpec:
    """The function's schema; a hint that has no JSON type is a `SetupError` naming it."""
    name = function.__name__
    description = inspect.getdoc(function)
    if not description:
        raise SetupError(f"tool {name}: add a docstring, it is what the model reads")
    try:
        hints = typing.get_type_hints(function)
    except Exception as error:
        raise SetupError(f"tool {name}: its type hints cannot be read ({error})") from None
    properties: dict[str, Any] = {}
    required: list[str] = []
    for parameter in inspect.signature(function).parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise SetupError(f"tool {name}: *{parameter.name} cannot be described to the model")
        hint = hints.get(parameter.name)
        schema = _json_schema(hint)
        if schema is None:
            got = getattr(hint, "__name__", hint)
            raise SetupError(
                f"tool {name}: argument {parameter.name} needs a type hint of str, int, float, "
                f"bool, list, dict or a Literal of one of them (got {got})"
            )
        properties[parameter.name] = schema
        if parameter.default is parameter.empty:
            required.append(parameter.name)
    schema = {"type": "object", "properties": properties, "required": required}
    return ToolSpec(name, description, schema)


def _json_schema(hint: Any) -> dict[str, Any] | None:
    """The JSON schema of a hint, None if it has none. `X | None` is X (an argument that may be
    left out), `Literal["c", "f"]` a string of those values, `list[int]` an array of integers."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if isinstance(hint, types.UnionType) or origin is typing.Union:
        kept = [arg for arg in args if arg is not type(None)]
        return _json_schema(kept[0]) if len(kept) == 1 else None
    if origin is typing.Literal:
        kinds = {_JSON_TYPES.get(type(value)) for value in args}
        kind = kinds.pop() if len(kinds) == 1 else None
        return None if kind is None else {"type": kind, "enum": list(args)}
    if origin is list and args:
        items = _json_schema(args[0])
        return None if items is None else {"type": "array", "items": items}
    kind = _JSON_TYPES.get(origin or hint)
    return None if kind is None else {"type": kind}


def load_module(path: str) -> list[Callable[..., Any]]:
    """The public functions defined in the Python file at `path`."""
    file = Path(path)
    if not file.is_file():
        raise SetupError(f"--tools_module {path}: no such file")
    module_name = f"voice_agent_tools_{file.stem}"
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise SetupError(f"--tools_module {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # so its type hints resolve
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        raise SetupError(
            f"--tools_module {path} failed to load: {type(error).__name__}: {error}"
        ) from None
    functions: list[Callable[..., Any]] = [
        value for attribute, value in vars(module).items()
        if inspect.isfunction(value) and value.__module__ == module_name
        and not attribute.startswith("_")
    ]  # fmt: skip
    if not functions:
        raise SetupError(f"--tools_module {path} defines no public function to offer as a tool")
    return functions
