"""Checks a query must pass before it is evaluated, whichever front end wrote it.

`check_json` walks a json-rql query as given (before and after templates are filled):
only JSON values, text that is valid Unicode (a lone surrogate cannot become a term),
integers a term can hold, and nesting no deeper than a message may be. `check_query`
walks the algebra both front ends build: operators with the number of arguments they
take, constant regexes RE2 accepts, and a depth the evaluator's recursion can afford.
Both are iterative, so a hostile query cannot exhaust the stack while being checked.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from mizu_core import terms
from mizu_core.errors import QueryError
from mizu_core.query.algebra import Call, Const, Var
from mizu_core.query.regex import matcher

MAX_DEPTH = 256  # levels of JSON in a query (as in a message), and of its algebra
MAX_INTEGER_DIGITS = 1000  # an integer in a query (a term holds any, JSON text up to 4,300)

# op → (fewest, most) arguments; None: no upper bound
ARITY: dict[str, tuple[int, int | None]] = {
    "eq": (2, 2), "neq": (2, 2), "lt": (2, 2), "lte": (2, 2), "gt": (2, 2), "gte": (2, 2),
    "and": (1, None), "or": (1, None), "not": (1, 1), "in": (1, None), "notin": (1, None),
    "regex": (2, 3), "bound": (1, 1), "str": (1, 1), "lang": (1, 1), "langmatches": (2, 2),
    "plus": (2, 2), "minus": (2, 2), "times": (2, 2), "divide": (2, 2), "concat": (0, None),
}


def _plural(n: int) -> str:
    return f"{n} argument" + ("" if n == 1 else "s")


def check_json(query: Any, data: bool = False) -> None:
    """Refuse what no json-rql query can hold (see the module's docstring). With `data`
    (a message or a query holding links, before templates are filled), values of other
    types (CIDs, bytes) are let through."""
    stack: list[tuple[Any, int]] = [(query, 1)]
    while stack:
        value, depth = stack.pop()
        t = type(value)
        if t is str:
            _text(value)
        elif t is dict or t is list:
            if depth > MAX_DEPTH:
                raise QueryError(f"the query is nested deeper than {MAX_DEPTH} levels")
            if t is dict:
                for key, item in value.items():
                    if type(key) is not str:
                        raise QueryError(f"a query's keys are strings, not {type(key).__name__} ({key!r:.40})")
                    _text(key)
                    stack.append((item, depth + 1))
            else:
                stack.extend((item, depth + 1) for item in value)
        elif t is int:
            if value.bit_length() > MAX_INTEGER_DIGITS * 3.33:
                raise QueryError(f"an integer in the query has more than {MAX_INTEGER_DIGITS} digits")
        elif value is not None and t not in (bool, float) and not data:
            raise QueryError(f"a query holds JSON values only, not {type(value).__name__}")


def _text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise QueryError(
            f"the query holds a lone surrogate (\\u{ord(text[e.start]):04x}), which is not Unicode text"
        ) from None


def check_text(text: str) -> None:
    """SPARQL text: valid Unicode."""
    _text(text)


def check_query(query: Any) -> None:
    """Walk a parsed query (algebra dataclasses): arities, regexes, depth."""
    stack: list[tuple[Any, int]] = [(query, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (tuple, list)):
            stack.extend((item, depth) for item in node)
            continue
        if not dataclasses.is_dataclass(node) or isinstance(node, (Var, Const)):
            continue
        if depth > MAX_DEPTH:
            raise QueryError(f"the query is nested deeper than {MAX_DEPTH} levels (patterns and expressions)")
        if isinstance(node, Call):
            _check_call(node)
        for f in dataclasses.fields(node):
            stack.append((getattr(node, f.name), depth + 1))


def _check_call(call: Call) -> None:
    op, args = call.op, call.args
    if op.startswith("iri:"):
        if len(args) != 1:
            raise QueryError(f"function <{op[4:]:.100}> takes 1 argument, not {len(args)}")
        return
    fewest, most = ARITY.get(op, (0, None))
    if len(args) < fewest or (most is not None and len(args) > most):
        wanted = _plural(fewest) if fewest == most else (
            f"at least {_plural(fewest)}" if most is None else f"{fewest} to {most} arguments")
        raise QueryError(f"@{op} takes {wanted}, not {len(args)}")
    if op == "bound" and not isinstance(args[0], Var):
        raise QueryError("@bound takes a variable")
    if op == "regex" and isinstance(args[1], Const) and args[1].term[:1] == b"S":
        flags: str | None = ""
        if len(args) > 2:
            flag = args[2]
            flags = terms.python_value(flag.term) if isinstance(flag, Const) and flag.term[:1] == b"S" else None
        if flags is not None:
            matcher(terms.python_value(args[1].term), flags)  # a RegexError if RE2 refuses it
