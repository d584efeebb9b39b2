"""Arithmetic the way a spoken assistant needs it: numbers, + - * / // % **, parentheses and a
few words a model writes for them ("17 times 23"), evaluated from the syntax tree, never by
`eval`. Bounded, so "9 ** 9 ** 9" is refused instead of computed for hours."""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable

_BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}  # fmt: skip
_UNARY: dict[type[ast.unaryop], Callable[[float], float]] = {
    ast.UAdd: operator.pos, ast.USub: operator.neg,
}  # fmt: skip
_WORDS = (
    (r"\bplus\b", "+"), (r"\bminus\b", "-"), (r"\b(times|multiplied by)\b", "*"),
    (r"\bdivided by\b", "/"), (r"\bto the power of\b", "**"), (r"×", "*"), (r"÷", "/"),
    (r"\^", "**"), (r"(?<=\d),(?=\d{3}\b)", ""),
)  # fmt: skip
MAX_EXPONENT = 1000
MAX_MAGNITUDE = 1e100
MAX_LENGTH = 200


class NotArithmetic(ValueError):
    """An expression that is not arithmetic, or too big to compute: its message says which."""


def evaluate(expression: str) -> float | int:
    if len(expression) > MAX_LENGTH:
        raise NotArithmetic(f"an expression of at most {MAX_LENGTH} characters")
    text = expression.strip().rstrip("=?").strip()
    for pattern, symbol in _WORDS:
        text = re.sub(pattern, symbol, text, flags=re.IGNORECASE)
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise NotArithmetic(f"not an arithmetic expression: {expression!r}") from None
    value = _value(tree.body)
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def _value(node: ast.expr) -> float | int:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        if isinstance(node.value, bool):
            raise NotArithmetic("only numbers, + - * / // % ** and parentheses")
        return node.value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_value(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _value(node.left), _value(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise NotArithmetic(f"an exponent of at most {MAX_EXPONENT}")
        try:
            result = _BINARY[type(node.op)](left, right)
        except ZeroDivisionError:
            raise NotArithmetic("division by zero") from None
        except OverflowError:
            raise NotArithmetic("the result is too large") from None
        if isinstance(result, complex) or not math.isfinite(result) or abs(result) > MAX_MAGNITUDE:
            raise NotArithmetic("the result is too large or not a real number")
        return result
    raise NotArithmetic("only numbers, + - * / // % ** and parentheses")
