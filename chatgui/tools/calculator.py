"""A calculator the model may call: arithmetic over Python's ast, never eval.

Only numbers, + - * / // % **, unary signs, parentheses and a few math functions and constants
are allowed; everything else is refused by name. Every step is bounded so that no expression can
take the process down: exponents, the size of integers, the depth of nesting and the length of
the text all have limits (9**9**9 alone would need ~1.2 GB and minutes).
"""
from __future__ import annotations

import ast
import math
import operator

MAX_CHARS = 500
MAX_DEPTH = 40              # nesting of the expression tree
MAX_NODES = 200
MAX_INT_BITS = 4096         # ~1233 decimal digits
MAX_EXPONENT = 10_000
MAX_FACTORIAL = 500


class CalculatorError(ValueError):
    """The expression was refused or cannot be computed (the message says why, plainly)."""


def _factorial(n):
    if not float(n).is_integer() or n < 0:
        raise CalculatorError("factorial needs a whole number of at least 0")
    if n > MAX_FACTORIAL:
        raise CalculatorError(f"factorial is limited to {MAX_FACTORIAL}")
    return math.factorial(int(n))


FUNCTIONS = {"sqrt": math.sqrt, "abs": abs, "round": round, "floor": math.floor, "ceil": math.ceil,
             "log": math.log, "log10": math.log10, "log2": math.log2, "exp": math.exp, "sin": math.sin,
             "cos": math.cos, "tan": math.tan, "asin": math.asin, "acos": math.acos, "atan": math.atan,
             "min": min, "max": max, "factorial": _factorial, "hypot": math.hypot}
CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau}
BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
          ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: None}
UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}


def _checked(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CalculatorError("only numbers can be computed")
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise CalculatorError("the result is too large")
    if isinstance(value, float) and math.isnan(value):
        raise CalculatorError("the result is not a number")
    return value


def _power(a, b):
    if isinstance(b, int) and abs(b) > MAX_EXPONENT or isinstance(b, float) and abs(b) > MAX_EXPONENT:
        raise CalculatorError(f"exponents are limited to {MAX_EXPONENT}")
    if isinstance(a, int) and isinstance(b, int) and b > 0 and a not in (0, 1, -1):
        # the result's size before computing it: bits(a) * b
        if a.bit_length() * b > MAX_INT_BITS:
            raise CalculatorError("the result is too large")
    try:
        return a ** b
    except OverflowError:
        raise CalculatorError("the result is too large") from None


def _multiply(a, b):
    if isinstance(a, int) and isinstance(b, int) and a.bit_length() + b.bit_length() > MAX_INT_BITS + 1:
        raise CalculatorError("the result is too large")
    return a * b


def _eval(node, depth: int):
    if depth > MAX_DEPTH:
        raise CalculatorError("the expression is nested too deeply")
    if isinstance(node, ast.Expression):
        return _eval(node.body, depth + 1)
    if isinstance(node, ast.Constant):
        return _checked(node.value)
    if isinstance(node, ast.Name):
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        raise CalculatorError(f"unknown name {node.id!r}")
    if isinstance(node, ast.UnaryOp) and type(node.op) in UNARY:
        return _checked(UNARY[type(node.op)](_eval(node.operand, depth + 1)))
    if isinstance(node, ast.BinOp) and type(node.op) in BINARY:
        a, b = _eval(node.left, depth + 1), _eval(node.right, depth + 1)
        if isinstance(node.op, ast.Pow):
            return _checked(_power(a, b))
        if isinstance(node.op, ast.Mult):
            return _checked(_multiply(a, b))
        try:
            return _checked(BINARY[type(node.op)](a, b))
        except ZeroDivisionError:
            raise CalculatorError("division by zero") from None
        except OverflowError:
            raise CalculatorError("the result is too large") from None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        fn = FUNCTIONS.get(node.func.id)
        if fn is None:
            raise CalculatorError(f"unknown function {node.func.id!r}")
        args = [_eval(a, depth + 1) for a in node.args]
        try:
            return _checked(fn(*args))
        except (ValueError, TypeError) as e:
            raise CalculatorError(f"{node.func.id}: {e}") from None
        except OverflowError:
            raise CalculatorError("the result is too large") from None
    raise CalculatorError(f"{type(node).__name__} is not allowed in a calculation")


def calculate(expression: str):
    """The value of an arithmetic expression, or CalculatorError saying why not."""
    if not isinstance(expression, str):
        raise CalculatorError("the expression must be text")
    if len(expression) > MAX_CHARS:
        raise CalculatorError(f"the expression is longer than {MAX_CHARS} characters")
    text = expression.replace("^", "**").replace("×", "*").replace("÷", "/")
    # parentheses alone nest the parser's own recursion before any check of ours can run
    depth = best = 0
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        best = max(best, depth)
    if best > MAX_DEPTH:
        raise CalculatorError("the expression is nested too deeply")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise CalculatorError("the expression is not valid arithmetic") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise CalculatorError("the expression is too long")
    return _eval(tree, 0)


def format_number(value) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)
