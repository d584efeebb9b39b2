"""Tools the model may call, as plain values, and how a call is told apart in its reply.

A call travels in the reply's text in one canonical form, `<tool_call>{"name": ..., "arguments":
{...}}</tool_call>` (Qwen's own format): adapters whose API returns calls natively write them so,
and write them back natively in the next request. Small models often drop the tags and write the
bare JSON object; that is a call too. A reply is a call only when it starts as one: words
before a call would already have been spoken.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import attrs

OPEN, CLOSE = "<tool_call>", "</tool_call>"
# A reply that starts with one of these may be a call: held back until it is known.
_FENCE = "```"
# The 1.5B sometimes opens its call with the empty list of its template's tools, or wraps the
# call in that list's tags, or answers with the empty list alone.
_TOOLS_OPEN, _TOOLS_CLOSE = "<tools>", "</tools>"
_TOOLS_LIST = _TOOLS_OPEN + _TOOLS_CLOSE
_CALL_STARTS = ("{", OPEN, _FENCE, _TOOLS_OPEN)
# What only a call starts with: its tag, or a JSON object whose first key names the function.
_SURELY_A_CALL = re.compile(r'(<tool_call>|\{\s*"name"\s*:)')
_TYPES: Mapping[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,),
    "array": (list,), "object": (dict,),
}  # fmt: skip


@attrs.frozen
class ToolSpec:
    """`parameters` is the JSON schema of the arguments: an object whose properties are plain
    types (string, integer, number, boolean, array, object)."""

    name: str
    description: str
    parameters: Mapping[str, Any]

    @property
    def function(self) -> dict[str, Any]:
        """As chat templates and the chat-completions API take it."""
        return {"type": "function", "function": {
            "name": self.name, "description": self.description,
            "parameters": dict(self.parameters)}}  # fmt: skip


@attrs.frozen
class ToolCall:
    name: str
    arguments: Mapping[str, Any]

    @property
    def written(self) -> str:
        """The call in the reply's canonical form."""
        body = json.dumps({"name": self.name, "arguments": dict(self.arguments)})
        return f"{OPEN}{body}{CLOSE}"


def parse_call(text: str) -> ToolCall | None:
    """The call `text` starts with, if it starts with one: tagged or bare JSON, a name and
    `arguments` (or `parameters`, as some models write) an object. Read as small models write
    it: in a code block or not, what follows the first call is ignored (they go on writing
    calls), and a call missing its last braces is closed."""
    body = text.strip().removeprefix(_TOOLS_LIST).strip()
    if body.startswith(_TOOLS_OPEN):
        body = body[len(_TOOLS_OPEN) :].partition(_TOOLS_CLOSE)[0].strip()
    if body.startswith(_FENCE):  # a code block: ```json ... ```
        body = body[len(_FENCE) :].partition(_FENCE)[0].removeprefix("json").strip()
    if body.startswith(OPEN):
        body = body[len(OPEN) :].partition(CLOSE)[0].strip()
    value = _first_object(body)
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        return None
    arguments = value.get("arguments", value.get("parameters", {}))
    if isinstance(arguments, str):  # OpenAI's wire form: the arguments as a JSON string
        try:
            arguments = json.loads(arguments)
        except ValueError:
            return None
    return ToolCall(value["name"], arguments) if isinstance(arguments, dict) else None


def _first_object(body: str) -> Any:
    """The first JSON object of `body`; the 1.5B sometimes doubles the opening brace."""
    decoder = json.JSONDecoder()
    body = body[len(body) - len(body.lstrip("{")) - 1 :] if body.startswith("{{") else body
    for closing in ("", "}", "}}"):
        try:
            return decoder.raw_decode(body + closing)[0]
        except ValueError:
            continue
    return None


class BadArguments(ValueError):
    """Arguments a tool cannot take: the message is said to the model as the call's result."""


def fitted_arguments(spec: ToolSpec, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """`arguments` as `spec`'s schema takes them: those it does not know are left out (small
    models invent some, "now()" for the time); a missing one, or one of the wrong type, is
    `BadArguments`."""
    properties: Mapping[str, Any] = spec.parameters.get("properties", {})
    required = list(spec.parameters.get("required", ()))
    missing = [name for name in required if name not in arguments]
    if missing:
        raise BadArguments(f"missing argument(s): {', '.join(missing)}")
    # A null for an argument that may be left out is left out: the function's default applies.
    fitted = {
        name: value for name, value in arguments.items()
        if name in properties and (value is not None or name in required)
    }  # fmt: skip
    for name, value in fitted.items():
        expected = properties[name].get("type")
        kinds = _TYPES.get(expected, (object,))
        if not isinstance(value, kinds) or (expected != "boolean" and isinstance(value, bool)):
            raise BadArguments(f"argument {name!r} must be of type {expected}")
        allowed = properties[name].get("enum")
        if allowed is not None and value not in allowed:
            raise BadArguments(f"argument {name!r} must be one of {', '.join(map(str, allowed))}")
    return fitted


def spoken_result(result: str) -> str:
    """A tool's result as words, for when it must be said as the answer: a JSON object or list
    ({"city": "Paris", "temp": 21}) becomes "city Paris, temp 21", never braces and quotes read
    aloud; anything else is said as it is."""
    try:
        value = json.loads(result)
    except ValueError:
        return result
    return _words(value) if isinstance(value, (dict, list)) else result


def _words(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{str(key).replace('_', ' ')} {_words(v)}" for key, v in value.items())
    if isinstance(value, list):
        return ", ".join(_words(item) for item in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "none" if value is None else str(value)


class CallWatch:
    """Reads a reply as it streams: text that cannot be a call goes on at once; a reply that
    starts like one is held until it ends, then is a call or, if it is not one after all,
    its text."""

    def __init__(self, offered: bool) -> None:
        """`offered`: the model was offered tools (else every reply is text)."""
        self._held = ""
        self._deciding = offered

    def feed(self, delta: str) -> str:
        """The text of `delta` that may be said now."""
        if not self._deciding:
            return delta
        self._held += delta
        start = self._held.lstrip()
        if not start:
            return ""
        if any(s.startswith(start[: len(s)]) for s in _CALL_STARTS):
            return ""  # the start of a call, or of "{" text: wait for the whole reply
        self._deciding = False
        said, self._held = self._held, ""
        return said

    @property
    def calling(self) -> bool:
        """The reply held so far is surely a call, before its end says which."""
        return _SURELY_A_CALL.match(self._held.lstrip()) is not None

    def finish(self) -> tuple[ToolCall | None, str]:
        """At the reply's end: the call it was, or the text still held (none for an empty
        list of tools, which says nothing)."""
        held, self._held = self._held, ""
        call = parse_call(held) if held.strip() else None
        if call is not None:
            return call, ""
        return None, "" if held.strip() == _TOOLS_LIST else held
