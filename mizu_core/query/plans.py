"""Planned BGPs compiled to Python: one generator of nested loops per plan.

Interpreting a plan costs a generator, a dict copy and a few calls per row and step. The
generated code keeps each variable in a local, builds one dict per solution, and scans a
step as soon as what it reads is bound: a step that reads only variables bound further
out is scanned there, once, and when it finds nothing the loops in between never run (a
subject's missing property prunes the search before its other properties are listed).

For `?p :type "T" . ?p :label ?l . ?p :price ?x` the code is, in essence:

    def match(solution):
        for r0 in rows_0(pack2(c0_1, c0_2)):      # pos: (p, o, s)
            v0 = r0[2]
            h2 = rows_2(pack2(v0, c2_1))          # hoisted: reads only ?p
            ...                                    # (nothing found: next r0)
            for r1 in rows_1(pack2(v0, c1_1)):    # spo
                v1 = r1[2]
                for r2 in h2:
                    v2 = r2[2]
                    yield {**solution, 'p': v0, 'l': v1, 'x': v2}
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from types import CodeType

from mizu_core.query.deadline import Deadline
from mizu_core.query.expressions import Solution
from mizu_core.repo.index import LAYOUT, TripleIndex

Match = Callable[[Solution], Iterator[Solution]]
MAX_LOOPS = 16  # Python allows 20 nested blocks; longer plans are chained


@dataclass(frozen=True)
class Step:
    """One triple pattern of a plan, in the order the plan scans them."""

    ids: tuple[int | None, ...]  # the constants' ids at (s, p, o); None where a variable is
    names: tuple[str | None, ...]  # the variables at (s, p, o); None where a constant is
    ready: Callable[[Solution], bool] | None  # the filters whose last variable it binds


def compile_plan(
    steps: tuple[Step, ...], bound: frozenset[str], index: TripleIndex, deadline: Deadline
) -> Match:
    """A generator function: match(solution) yields each extension of `solution` (which
    binds the variables in `bound`) by the steps. Every loop counts down `deadline`."""
    head = steps[:MAX_LOOPS]
    rest = (compile_plan(steps[MAX_LOOPS:], bound | _bound_by(head), index, deadline)
            if len(steps) > MAX_LOOPS else None)
    shape = tuple(step.names for step in head)
    code, tables = _code(shape, tuple(step.ready is not None for step in head), bound, rest is not None)
    env: dict[str, object] = {"rest": rest, "dl": deadline, "tick": deadline.tick}
    for k, step in enumerate(head):
        env[f"rows_{k}"], env[f"ready_{k}"] = index.rows(tables[k]), step.ready
        for slot, term_id in enumerate(step.ids):
            env[f"c{k}_{slot}"] = term_id
    env.update(_PACK)
    exec(code, env)
    match: Match = env["match"]  # type: ignore[assignment]
    return match


# pack1..pack3: the prefix of a scan, from its 1 to 3 bound ids in the table's key order.
_PACK = {f"pack{n}": struct.Struct(">" + "Q" * n).pack for n in (1, 2, 3)}


@lru_cache(maxsize=512)
def _code(
    shape: tuple[tuple[str | None, ...], ...], filtered: tuple[bool, ...],
    bound: frozenset[str], chained: bool,
) -> tuple[CodeType, tuple[str, ...]]:
    """The code of a plan's shape (which variables each step has where, which steps test
    filters) and the table each step scans. Constants, tables and filters are names the
    caller's globals bind, so plans of one shape (the same query, again) share code."""
    writer = _Writer(shape, filtered, bound, chained)
    return compile(writer.source(), "<bgp plan>", "exec"), tuple(writer.tables)


def _bound_by(steps: tuple[Step, ...]) -> frozenset[str]:
    return frozenset(n for step in steps for n in step.names if n is not None)


class _Writer:
    def __init__(
        self, shape: tuple[tuple[str | None, ...], ...], filtered: tuple[bool, ...],
        bound: frozenset[str], chained: bool,
    ) -> None:
        self.shape, self.filtered, self.entry, self.chained = shape, filtered, bound, chained
        self.tables: list[str] = []
        self.orders: list[tuple[int, ...]] = []  # the slots each step's keys hold, in order
        self.lines: list[str] = []
        self.local: dict[str, str] = {}  # variable → local holding its value
        self.binder: dict[str, int] = {}  # variable → the step that binds it
        for k, names in enumerate(shape):
            for name in names:
                if name is not None and name not in bound:
                    self.binder.setdefault(name, k)
        # A step is scanned right after the last step that binds what it reads (-1: at entry).
        self.level = [max((self.binder.get(n, -1) for n in names if n is not None
                           and self.binder.get(n, k) < k), default=-1) for k, names in enumerate(shape)]
        for k, names in enumerate(shape):
            table, order = LAYOUT[tuple(n is None or self._bound_before(n, k) for n in names)]  # type: ignore[index]
            self.tables.append(table)
            self.orders.append(order)

    def source(self) -> str:
        self._line(0, "def match(solution):")
        for name in sorted({n for names in self.shape for n in names if n is not None} & self.entry):
            local = self._local(name)
            self._line(1, f"{local} = solution[{name!r}]")
            self._line(1, f"if type({local}) is not int: return  # a term the store lacks matches nothing")
        self._hoist(-1, 1)
        self._line(1, "t = dl.left  # the deadline's countdown (see deadline.py)")
        for k in range(len(self.shape)):
            self._loop(k, k + 1)
        solution = "{**solution" + "".join(f", {n!r}: {self.local[n]}" for n in self.binder) + "}"
        self._line(len(self.shape) + 1, "dl.left = t")
        self._line(len(self.shape) + 1, f"yield from rest({solution})" if self.chained else f"yield {solution}")
        self._line(1, "dl.left = t")
        return "\n".join(self.lines)

    def _loop(self, k: int, depth: int) -> None:
        call = self._scan_call(k)
        source = f"(h{k} if h{k} is not None else {call})" if self._hoisted(k) else call
        self._line(depth, f"for r{k} in {source}:")
        self._line(depth + 1, "t -= 1")
        self._line(depth + 1, "if t <= 0: t = tick()")
        for slot, name in enumerate(self.shape[k]):
            if name is None or self._bound_before(name, k):
                continue
            at = self.orders[k].index(slot)  # rows come in the table's key order
            if name in self.local:  # the same variable twice in this pattern
                self._line(depth + 1, f"if r{k}[{at}] != {self.local[name]}: continue")
            else:
                self._line(depth + 1, f"{self._local(name)} = r{k}[{at}]")
        if self.filtered[k]:
            bindings = "".join(f", {n!r}: {self.local[n]}" for n in self.binder if self.binder[n] <= k)
            self._line(depth + 1, f"if not ready_{k}({{**solution{bindings}}}): continue")
        self._hoist(k, depth + 1)

    def _hoist(self, level: int, depth: int) -> None:
        """Scan now the later steps whose inputs are all bound at this level. A short scan
        (a list) is kept for the loops inside; a long one is left to stream at its step."""
        leave = "return" if level == -1 else "continue"
        for k in range(level + 2, len(self.shape)):
            if self.level[k] == level:
                self._line(depth, f"h{k} = {self._scan_call(k)}")
                self._line(depth, f"if type(h{k}) is not list: h{k} = None")
                self._line(depth, f"elif not h{k}: {leave}")

    def _hoisted(self, k: int) -> bool:
        return self.level[k] < k - 1

    def _scan_call(self, k: int) -> str:
        """rows_k(prefix): the prefix packs the constants (names c<step>_<slot>) and the
        variables bound before step k, in the order of the table's keys."""
        names = self.shape[k]
        args = []
        for slot in self.orders[k]:
            name = names[slot]
            if name is None:
                args.append(f"c{k}_{slot}")
            elif self._bound_before(name, k):
                args.append(self.local[name])
        prefix = f"pack{len(args)}({', '.join(args)})" if args else 'b""'
        return f"rows_{k}({prefix})"

    def _bound_before(self, name: str, k: int) -> bool:
        return name in self.entry or self.binder.get(name, k) < k

    def _local(self, name: str) -> str:
        if name not in self.local:
            self.local[name] = f"v{len(self.local)}"
        return self.local[name]

    def _line(self, depth: int, text: str) -> None:
        self.lines.append("    " * depth + text)
