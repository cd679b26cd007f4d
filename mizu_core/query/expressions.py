"""Filter and BIND expressions over terms, with SPARQL's error semantics.

An expression that cannot be evaluated (unbound variable, wrong type) raises `ExprError`;
a filter treats that as false, a BIND leaves its variable unbound.
"""

from __future__ import annotations

import operator
import re
import struct
from collections.abc import Callable, Iterable
from typing import Any

from mizu_core import terms
from mizu_core.query.algebra import Call, Const, Exists, Expr, Var
from mizu_core.query.checks import MAX_INTEGER_DIGITS
from mizu_core.query.regex import RegexError, matcher
from mizu_core.terms import Term

_DOUBLE = struct.Struct(">d")
Value = int | Term  # a store id (see evaluate.py) or a term the store does not hold
Solution = dict[str, Value]
_NUMERIC_TYPES = {
    terms.XSD + t for t in (
        "decimal", "float", "int", "long", "short", "byte", "nonNegativeInteger",
        "positiveInteger", "negativeInteger", "nonPositiveInteger", "unsignedInt", "unsignedLong",
    )
}


class ExprError(Exception):
    pass


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "lt": operator.lt, "gt": operator.gt, "lte": operator.le, "gte": operator.ge,
    "eq": operator.eq, "neq": operator.ne,
}
_FLIPPED = {"lt": "gt", "gt": "lt", "lte": "gte", "gte": "lte", "eq": "eq", "neq": "neq"}


def _always(a: Any, b: Any) -> bool:
    return True


def numeric(term: Term) -> int | float | None:
    kind = term[:1]
    if kind == b"i":
        return int(term[1:])
    if kind == b"d":
        value: float = _DOUBLE.unpack_from(term, 1)[0]
        return value
    if kind == b"T" and terms.datatype(term) in _NUMERIC_TYPES:
        lexical = terms.python_value(term)
        try:
            return int(lexical) if re.fullmatch(r"[+-]?\d+", lexical) else float(lexical)
        except ValueError:
            return None
    return None


MAX_INTEGER_BITS = 4096  # an integer result past this is an error (1,233 digits)
MAX_STRING = 1 << 24  # characters of a string result (CONCAT doubling itself in a chain)


def _number_term(value: int | float) -> Term:
    if type(value) is int and value.bit_length() > MAX_INTEGER_BITS:
        raise ExprError("integer too large")
    return terms.literal(value)


def _numeric_comparison(expr: Expr) -> tuple[str, Callable[[Any, Any], bool], int | float] | None:
    """(variable, comparison, number) for `?x op number` or `number op ?x`, else None."""
    if not (isinstance(expr, Call) and expr.op in _COMPARE and len(expr.args) == 2):
        return None
    a, b = expr.args
    op = expr.op
    if isinstance(a, Const) and isinstance(b, Var):
        a, b, op = b, a, _FLIPPED[op]
    if not (isinstance(a, Var) and isinstance(b, Const)):
        return None
    number = numeric(b.term)
    if number is None or number != number:  # NaN compares false whatever: leave it general
        return None
    return a.name, _COMPARE[op], number


def ebv(term: Term) -> bool:
    """Effective boolean value."""
    kind = term[:1]
    if kind == b"b":
        return term == terms.TRUE
    n = numeric(term)
    if n is not None:
        return n != 0 and n == n
    if kind in (b"S", b"L"):
        return len(term) > 1 and term[1:].split(b"\0", 1)[-1] != b""
    raise ExprError("no effective boolean value")


def _compare_key(term: Term) -> tuple[str, Any]:
    n = numeric(term)
    if n is not None:
        return ("n", n)
    kind = term[:1]
    if kind == b"S":
        return ("s", terms.python_value(term))
    if kind == b"b":
        return ("b", term == terms.TRUE)
    if kind == b"T":
        return ("t:" + (terms.datatype(term) or ""), terms.python_value(term))
    raise ExprError("not comparable")


def equal(a: Term, b: Term) -> bool:
    if a == b:
        return True
    try:
        ka, kb = _compare_key(a), _compare_key(b)
    except ExprError:
        if a[:1] in (b"I", b"B") or b[:1] in (b"I", b"B"):
            return False
        raise
    if ka[0] != kb[0]:
        raise ExprError("incompatible types")
    return bool(ka[1] == kb[1])


def less(a: Term, b: Term) -> bool:
    ka, kb = _compare_key(a), _compare_key(b)
    if ka[0] != kb[0]:
        raise ExprError("incompatible types")
    return bool(ka[1] < kb[1])


def string_value(term: Term) -> str:
    """The text of a term for string functions: literals' lexical form, IRIs as text."""
    return terms.iri_value(term) if term[:1] == b"I" else terms.lexical(term)


def _string(term: Term) -> str:
    if term[:1] in (b"S", b"L"):
        value: str = terms.python_value(term)
        return value
    raise ExprError("not a string")


def _arith(op: str, a: Term, b: Term) -> Term:
    x, y = numeric(a), numeric(b)
    if x is None or y is None:
        raise ExprError("not numbers")
    try:
        if op == "plus":
            return _number_term(x + y)
        if op == "minus":
            return _number_term(x - y)
        if op == "times":
            return _number_term(x * y)
        if y == 0:
            raise ExprError("division by zero")
        return _number_term(x / y)
    except OverflowError:  # an integer too large to mix with a double
        raise ExprError("numeric overflow") from None


def _cast(datatype: str, term: Term) -> Term:
    lexical = terms.iri_value(term) if term[:1] == b"I" else terms.lexical(term)
    try:
        if datatype == terms.XSD_STRING:
            return terms.literal(lexical)
        if datatype == terms.XSD_INTEGER:
            if len(lexical) > MAX_INTEGER_DIGITS:  # the bound of an integer in a query
                raise ExprError("integer too large")
            return _number_term(int(float(lexical)) if numeric(term) is not None else int(lexical))
        if datatype in (terms.XSD_DOUBLE, terms.XSD + "float", terms.XSD + "decimal"):
            return terms.literal(float(lexical))
        if datatype == terms.XSD_BOOLEAN:
            return terms.literal(ebv(term))
    except (ValueError, OverflowError):  # not a number; INF or NaN as an integer
        raise ExprError("cannot cast") from None
    raise ExprError(f"unknown function <{datatype}>")


class ExpressionEvaluator:
    def __init__(
        self, exists: Callable[[Exists, Solution], bool], decode: Callable[[Value], Term]
    ) -> None:
        self.exists = exists
        self.decode = decode

    def compile_filter(self, exprs: Iterable[Expr]) -> Callable[[Solution], bool] | None:
        """One closure testing a conjunction of expressions (None for none)."""
        tests = self._compiled_tests(exprs)
        if len(tests) <= 1:
            return tests[0] if tests else None
        return lambda s: all(test(s) for test in tests)

    def _compiled_tests(self, exprs: Iterable[Expr]) -> tuple[Callable[[Solution], bool], ...]:
        """Closures testing a conjunction of expressions. The common filters skip the
        general interpreter: comparisons of one variable with numbers become one range
        test that decodes the variable once; a regex over a variable is a direct search."""
        ranges: dict[str, list[tuple[Callable[[Any, Any], bool], int | float, Expr]]] = {}
        tests = []
        for expr in exprs:
            bound = _numeric_comparison(expr)
            if bound is not None:
                name, compare, number = bound
                ranges.setdefault(name, []).append((compare, number, expr))
            else:
                tests.append(self._compiled(expr))
        return tuple(self._range_test(name, checks) for name, checks in ranges.items()) + tuple(tests)

    def _compiled(self, expr: Expr) -> Callable[[Solution], bool]:
        if isinstance(expr, Call):
            args = expr.args
            if expr.op == "and":
                return self.compile_filter(args) or (lambda s: True)
            if (expr.op == "regex" and isinstance(args[0], Var)
                    and all(isinstance(a, Const) and a.term[:1] == b"S" for a in args[1:])):
                flags = terms.python_value(args[2].term) if len(args) > 2 else ""  # type: ignore[union-attr]
                search = matcher(terms.python_value(args[1].term), flags)  # type: ignore[union-attr]
                return self._on_string(args[0].name, search)
        return lambda s: self.test(expr, s)

    def _range_test(
        self, name: str, checks: list[tuple[Callable[[Any, Any], bool], int | float, Expr]]
    ) -> Callable[[Solution], bool]:
        decode, slow = self.decode, self.test
        compare1, bound1, _ = checks[0]
        compare2, bound2, _ = checks[1] if len(checks) > 1 else (_always, 0, None)
        more = checks[2:]

        def test(s: Solution) -> bool:
            value = s.get(name)
            if value is None:
                return False
            n = numeric(value if type(value) is bytes else decode(value))
            if n is None:  # not a number: the general rules (strings, dates, errors)
                return all(slow(expr, s) for _, _, expr in checks)
            return (compare1(n, bound1) and compare2(n, bound2)
                    and (not more or all(compare(n, bound) for compare, bound, _ in more)))

        return test

    def _on_string(self, name: str, search: Callable[[bytes], bool]) -> Callable[[Solution], bool]:
        decode = self.decode

        def test(s: Solution) -> bool:
            value = s.get(name)
            if value is None:
                return False
            term = value if type(value) is bytes else decode(value)
            kind = term[:1]
            if kind == b"S":
                return search(term[1:])
            if kind == b"L":
                return search(term[1:].split(b"\0", 1)[1])
            return False  # regex over a non-string is an error: the filter fails

        return test

    def test(self, expr: Expr, solution: Solution) -> bool:
        try:
            return ebv(self.value(expr, solution))
        except ExprError:
            return False

    def value(self, expr: Expr, solution: Solution) -> Term:
        if isinstance(expr, Var):
            value = solution.get(expr.name)
            if value is None:
                raise ExprError(f"?{expr.name} is unbound")
            return value if type(value) is bytes else self.decode(value)
        if isinstance(expr, Const):
            return expr.term
        if isinstance(expr, Exists):
            return terms.literal(self.exists(expr, solution) != expr.negated)
        if isinstance(expr, Call):
            return self.call(expr, solution)
        raise ExprError("an aggregate outside a grouped query")

    def call(self, expr: Call, solution: Solution) -> Term:
        op, args = expr.op, expr.args
        if op == "bound":
            return terms.literal(isinstance(args[0], Var) and args[0].name in solution)
        if op == "and":
            return terms.literal(all(self.test(a, solution) for a in args))
        if op == "or":
            return terms.literal(any(self.test(a, solution) for a in args))
        if op == "not":
            return terms.literal(not ebv(self.value(args[0], solution)))
        values = [self.value(a, solution) for a in args]
        if op == "eq":
            return terms.literal(equal(values[0], values[1]))
        if op == "neq":
            return terms.literal(not equal(values[0], values[1]))
        if op == "lt":
            return terms.literal(less(values[0], values[1]))
        if op == "gt":
            return terms.literal(less(values[1], values[0]))
        if op == "lte":
            return terms.literal(not less(values[1], values[0]))
        if op == "gte":
            return terms.literal(not less(values[0], values[1]))
        if op in ("in", "notin"):
            found = any(_safe_equal(values[0], v) for v in values[1:])
            return terms.literal(found if op == "in" else not found)
        if op in ("plus", "minus", "times", "divide"):
            return _arith(op, values[0], values[1])
        if op == "regex":
            flags = _string(values[2]) if len(values) > 2 else ""
            try:
                search = matcher(_string(values[1]), flags)
            except RegexError:  # a pattern from the data: an error, as SPARQL says
                raise ExprError("invalid regex") from None
            return terms.literal(search(_string(values[0]).encode("utf-8")))
        if op == "str":
            t = values[0]
            return terms.literal(terms.iri_value(t) if t[:1] == b"I" else terms.lexical(t))
        if op == "lang":
            t = values[0]
            return terms.literal(t[1:].split(b"\0", 1)[0].decode() if t[:1] == b"L" else "")
        if op == "langmatches":
            tag, pattern = _string(values[0]).lower(), _string(values[1]).lower()
            ok = (tag != "") if pattern == "*" else (tag == pattern or tag.startswith(pattern + "-"))
            return terms.literal(ok)
        if op == "concat":
            text = "".join(_string(v) for v in values)
            if len(text) > MAX_STRING:
                raise ExprError("string too long")
            return terms.literal(text)
        if op.startswith("iri:"):
            return _cast(op[4:], values[0])
        raise ExprError(f"unknown operator {op}")


def _safe_equal(a: Term, b: Term) -> bool:
    try:
        return equal(a, b)
    except ExprError:
        return False
