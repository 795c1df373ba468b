"""CloudWatch metric math on one datapoint at a time, parsed safely with `ast` (no eval).

Supported: numbers, metric ids, + - * /, unary minus, parentheses, comparisons
(< <= > >= == !=), AND/OR (also && ||), CEIL, FLOOR, ABS, FILL(x, value), FILL(id, REPEAT)
(the newest earlier real value of a metric id, given by the caller), IF(cond, a, b),
MAX([..]) and MIN([..]), and the time functions of a datapoint's timestamp, in UTC as
CloudWatch computes them: MINUTE, HOUR, DAY (day of the week, 1 = Monday .. 7 = Sunday), DATE
(day of the month), MONTH. A missing datapoint is None: arithmetic on it is missing, a time
function of it too, FILL replaces it, MAX/MIN skip it. Division by zero is missing (CloudWatch
drops the point).
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

Value = float | None

_BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
}
_COMPARE: dict[type[ast.cmpop], Callable[[float, float], bool]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_UNARY_FUNCTIONS: dict[str, Callable[[float], float]] = {
    "CEIL": math.ceil,
    "FLOOR": math.floor,
    "ABS": abs,
}
_TIME_FUNCTIONS: dict[str, Callable[[datetime], int]] = {
    "MINUTE": lambda t: t.minute,
    "HOUR": lambda t: t.hour,
    "DAY": lambda t: t.isoweekday(),
    "DATE": lambda t: t.day,
    "MONTH": lambda t: t.month,
}
_LOGICAL = [(re.compile(r"\bAND\b|&&"), " and "), (re.compile(r"\bOR\b|\|\|"), " or ")]


class MathError(ValueError):
    """An expression outside the supported subset."""


class Expression:
    """A parsed metric math expression; `ids` are the metric ids it reads."""

    def __init__(self, text: str) -> None:
        self.text = text
        source = text
        for pattern, replacement in _LOGICAL:
            source = pattern.sub(replacement, source)
        try:
            self._tree = ast.parse(source.strip(), mode="eval").body
        except SyntaxError as error:
            raise MathError(f"cannot parse metric math {text!r}: {error.msg}") from None
        self.ids: set[str] = set()
        self._timestamp: datetime | None = None
        self._previous: Mapping[str, float] = {}
        self._check(self._tree)

    def _check(self, node: ast.expr) -> None:
        """Reject anything outside the subset before it is ever evaluated."""
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, int | float):
                raise MathError(f"{self.text!r}: only numbers are allowed as constants")
            return
        if isinstance(node, ast.Name):
            self.ids.add(node.id)
            return
        children: list[ast.expr]
        if isinstance(node, ast.BinOp) and type(node.op) in (*_BINARY, ast.Div):
            children = [node.left, node.right]
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            children = [node.operand]
        elif isinstance(node, ast.Compare) and all(type(op) in _COMPARE for op in node.ops):
            children = [node.left, *node.comparators]
        elif isinstance(node, ast.BoolOp):
            children = list(node.values)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
            children = self._check_call(node.func.id, node.args)
        else:
            raise MathError(f"{self.text!r}: unsupported syntax {ast.dump(node)[:60]}")
        for child in children:
            self._check(child)

    def _check_call(self, name: str, args: list[ast.expr]) -> list[ast.expr]:
        arity = {
            "FILL": 2,
            "IF": 3,
            "MAX": 1,
            "MIN": 1,
            **dict.fromkeys(_UNARY_FUNCTIONS, 1),
            **dict.fromkeys(_TIME_FUNCTIONS, 1),
        }
        if name not in arity:
            raise MathError(f"{self.text!r}: unsupported function {name}")
        if len(args) != arity[name]:
            raise MathError(f"{self.text!r}: {name} takes {arity[name]} argument(s)")
        if name in ("MAX", "MIN") and isinstance(args[0], ast.List):
            return list(args[0].elts)
        if name == "FILL" and _is_repeat(args[1]):
            if not isinstance(args[0], ast.Name):
                raise MathError(f"{self.text!r}: FILL(x, REPEAT) needs a metric id as x")
            return args[:1]
        return args

    def evaluate(
        self,
        values: Mapping[str, Value],
        timestamp: datetime | None = None,
        previous: Mapping[str, float] | None = None,
    ) -> Value:
        """The expression's value for one datapoint; `values` maps ids to values (or None),
        `timestamp` is the datapoint's (aware; needed only by the time functions), `previous`
        the newest earlier real value of each id (what FILL(id, REPEAT) repeats)."""
        self._timestamp = timestamp
        self._previous = previous or {}
        return self._eval(self._tree, values)

    def _eval(self, node: ast.expr, values: Mapping[str, Value]) -> Value:
        if isinstance(node, ast.Constant):
            assert isinstance(node.value, int | float)  # checked at parse time
            return float(node.value)
        if isinstance(node, ast.Name):
            if node.id not in values:
                raise MathError(f"{self.text!r}: unknown metric id {node.id}")
            return values[node.id]
        if isinstance(node, ast.UnaryOp):
            operand = self._eval(node.operand, values)
            return (
                None
                if operand is None
                else (-operand if isinstance(node.op, ast.USub) else operand)
            )
        if isinstance(node, ast.BinOp):
            return _binary(node.op, self._eval(node.left, values), self._eval(node.right, values))
        if isinstance(node, ast.Compare):
            return self._compare(node, values)
        if isinstance(node, ast.BoolOp):
            items = [self._eval(item, values) for item in node.values]
            if any(item is None for item in items):
                return None
            combine = all if isinstance(node.op, ast.And) else any
            return float(combine(bool(item) for item in items))
        assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        return self._call(node.func.id, node.args, values)

    def _compare(self, node: ast.Compare, values: Mapping[str, Value]) -> Value:
        left = self._eval(node.left, values)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = self._eval(comparator, values)
            if left is None or right is None:
                return None
            if not _COMPARE[type(op)](left, right):
                return 0.0
            left = right
        return 1.0

    def _call(self, name: str, args: list[ast.expr], values: Mapping[str, Value]) -> Value:
        if name in ("MAX", "MIN"):
            items = args[0].elts if isinstance(args[0], ast.List) else args
            present = [v for v in (self._eval(item, values) for item in items) if v is not None]
            if not present:
                return None
            return max(present) if name == "MAX" else min(present)
        if name == "FILL":
            value = self._eval(args[0], values)
            if value is not None:
                return value
            if _is_repeat(args[1]):
                assert isinstance(args[0], ast.Name)  # checked at parse time
                return self._previous.get(args[0].id)
            return self._eval(args[1], values)
        if name == "IF":
            condition = self._eval(args[0], values)
            if condition is None:
                return None
            return self._eval(args[1] if condition else args[2], values)
        value = self._eval(args[0], values)
        if value is None:
            return None
        if name in _TIME_FUNCTIONS:
            if self._timestamp is None:
                raise MathError(f"{self.text!r}: {name} needs the datapoint's timestamp")
            return float(_TIME_FUNCTIONS[name](self._timestamp.astimezone(UTC)))
        return float(_UNARY_FUNCTIONS[name](value))


def _is_repeat(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id == "REPEAT"


def _binary(op: ast.operator, left: Value, right: Value) -> Value:
    if left is None or right is None:
        return None
    if isinstance(op, ast.Div):
        return None if right == 0 else left / right
    return _BINARY[type(op)](left, right)
