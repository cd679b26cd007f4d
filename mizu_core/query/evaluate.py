"""Streaming evaluation of the algebra over the triple index.

Solutions flow through generators, so `@limit` stops the scans early and the first row is
ready before the last is computed. A BGP is matched by index nested loops: at each step
the pattern with the most bound positions goes next, and each pattern is one range scan.
Joins feed the left side's solutions into the right (substitution), which makes OPTIONAL,
NOT EXISTS and UNION cheap when the left side binds what the right side needs.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache

from mizu_core import terms
from mizu_core.query.algebra import (
    BGP,
    Aggregate,
    Call,
    Exists,
    Expr,
    Extend,
    Filter,
    Group,
    Join,
    LeftJoin,
    Minus,
    Pattern,
    Select,
    SubSelect,
    TriplePattern,
    Union,
    Values,
    Var,
)
from mizu_core.query.expressions import (
    ExprError,
    ExpressionEvaluator,
    Solution,
    numeric,
    string_value,
)
from mizu_core.repo.index import TripleIndex
from mizu_core.terms import Term


class Evaluator:
    def __init__(self, index: TripleIndex) -> None:
        self.index = index
        self.dictionary = index.dictionary
        self.expressions = ExpressionEvaluator(self._exists)
        self._plans: dict[tuple[tuple[TriplePattern, ...], frozenset[str]], tuple[TriplePattern, ...]] = {}

    def select(self, query: Select, hidden: bool = False) -> Iterator[Solution]:
        """Solutions of a query; `hidden` keeps the variables no query can name (a
        construct template's anonymous values need them)."""
        solutions = self.eval(query.pattern, iter([{}]))
        if query.order_by:
            key = self._order_key(query)
            if query.limit is not None and not query.distinct:
                # Only the first offset + limit rows are ever printed: keep just those.
                solutions = iter(heapq.nsmallest(query.offset + query.limit, solutions, key=key))
            else:
                solutions = iter(sorted(solutions, key=key))
        if query.projection is not None:
            names = [v.name for v in query.projection]
            solutions = ({n: s[n] for n in names if n in s} for s in solutions)
        elif not hidden:
            solutions = ({n: t for n, t in s.items() if not n.startswith("_")} for s in solutions)
        if query.distinct:
            solutions = _distinct(solutions)
        stop = None if query.limit is None else query.offset + query.limit
        return itertools.islice(solutions, query.offset, stop)

    def _order_key(self, query: Select):  # type: ignore[no-untyped-def]
        keys = query.order_by

        def key(solution: Solution) -> tuple[object, ...]:
            out: list[object] = []
            for k in keys:
                try:
                    term = self.expressions.value(k.expr, solution)
                    item = _sort_value(term)
                except ExprError:
                    item = (0, 0, "")
                out.append(_Reversed(item) if k.descending else item)
            return tuple(out)

        return key

    def eval(self, pattern: Pattern, solutions: Iterator[Solution]) -> Iterator[Solution]:
        if isinstance(pattern, BGP):
            for s in solutions:
                yield from self._bgp(list(pattern.triples), s, ())
        elif isinstance(pattern, Join):
            left = self.eval(pattern.left, solutions)
            if substitution_safe(pattern.right):
                yield from self.eval(pattern.right, left)
            else:
                yield from self._join_each(left, lambda: list(self.eval(pattern.right, iter([{}]))))
        elif isinstance(pattern, Union):
            for s in solutions:
                yield from self.eval(pattern.left, iter([s]))
                yield from self.eval(pattern.right, iter([s]))
        elif isinstance(pattern, LeftJoin):
            test, condition = self.expressions.test, pattern.expr
            safe = substitution_safe(pattern.right)
            right: HashTable | None = None
            for s in self.eval(pattern.left, solutions):
                if safe:
                    candidates: Iterable[Solution] = self.eval(pattern.right, iter([s]))
                else:
                    if right is None:
                        right = HashTable(list(self.eval(pattern.right, iter([{}]))))
                    candidates = right.merges(s)
                matched = False
                for m in candidates:
                    if condition is None or test(condition, m):
                        matched = True
                        yield m
                if not matched:
                    yield s
        elif isinstance(pattern, Minus):
            removed: list[Solution] | None = None
            for s in self.eval(pattern.left, solutions):
                if removed is None:
                    removed = list(self.eval(pattern.right, iter([{}])))
                if not any(_minus_matches(s, r) for r in removed):
                    yield s
        elif isinstance(pattern, Filter):
            bgp, pushed, rest = _pushable_filters(pattern)
            test = self.expressions.test
            if bgp is not None:
                # Filters over a BGP are checked as soon as their variables are bound.
                for s in solutions:
                    for found in self._bgp(list(bgp.triples), s, pushed):
                        if all(test(e, found) for e in rest):
                            yield found
                return
            for s in self.eval(pattern.inner, solutions):
                if test(pattern.expr, s):
                    yield s
        elif isinstance(pattern, Extend):
            name = pattern.var.name
            for s in self.eval(pattern.inner, solutions):
                try:
                    yield {**s, name: self.expressions.value(pattern.expr, s)}
                except ExprError:
                    yield s
        elif isinstance(pattern, Group):
            yield from self._join_each(solutions, lambda: self._groups(pattern))
        elif isinstance(pattern, SubSelect):
            yield from self._join_each(solutions, lambda: list(self.select(pattern.select)))
        elif isinstance(pattern, Values):
            rows = pattern.rows
            names = [v.name for v in pattern.variables]
            for s in solutions:
                for row in rows:
                    merged = _merge_row(s, names, row)
                    if merged is not None:
                        yield merged
        else:  # pragma: no cover - the parser builds only the patterns above
            raise TypeError(f"cannot evaluate {type(pattern).__name__}")

    def _join_each(
        self, solutions: Iterator[Solution], compute: Callable[[], list[Solution]]
    ) -> Iterator[Solution]:
        """Join an independently evaluated part (group, sub-query), computed once, with each
        incoming solution: SPARQL evaluates these bottom-up, not by substitution."""
        table: HashTable | None = None
        for s in solutions:
            if table is None:
                table = HashTable(compute())
            yield from table.merges(s)

    def _groups(self, group: Group) -> list[Solution]:
        buckets: dict[tuple[Term | None, ...], list[Solution]] = {}
        value = self.expressions.value
        for s in self.eval(group.inner, iter([{}])):
            key: list[Term | None] = []
            for k in group.keys:
                try:
                    key.append(value(k, s))
                except ExprError:
                    key.append(None)
            buckets.setdefault(tuple(key), []).append(s)
        if not buckets and not group.keys:
            buckets[()] = []  # aggregates over nothing still give one row (COUNT = 0)
        out = []
        for group_key, members in buckets.items():
            row: Solution = {}
            for k, term in zip(group.keys, group_key, strict=True):
                if isinstance(k, Var) and term is not None:
                    row[k.name] = term
            for var, aggregate in group.aggregates:
                result = aggregate_value(aggregate, members, value)
                if result is not None:
                    row[var.name] = result
            out.append(row)
        return out

    def _exists(self, expr: Exists, solution: Solution) -> bool:
        return next(self.eval(expr.pattern, iter([solution])), None) is not None

    def _bgp(
        self, triples: list[TriplePattern], solution: Solution,
        filters: tuple[tuple[Expr, frozenset[str]], ...],
    ) -> Iterator[Solution]:
        """Match a BGP; `filters` (expression, variables) are tested the moment their
        variables are all bound, pruning the search early."""
        if filters and any(names <= solution.keys() for _, names in filters):
            # Bound before this point (by the caller's solution): test them now.
            if not all(self.expressions.test(e, solution) for e, names in filters if names <= solution.keys()):
                return
            filters = tuple(f for f in filters if not f[1] <= solution.keys())
        order = self._plan(tuple(triples), frozenset(solution))
        yield from self._match(order, 0, solution, filters)

    def _plan(self, triples: tuple[TriplePattern, ...], bound: frozenset[str]) -> tuple[TriplePattern, ...]:
        """Join order for a BGP given the variables already bound: cheapest scan first,
        estimated from what is bound and the per-predicate statistics. Cached per shape."""
        key = (triples, bound)
        order = self._plans.get(key)
        if order is None:
            remaining, known, chosen = list(triples), set(bound), []
            while remaining:
                best = min(remaining, key=lambda t: self._estimate(t, known))
                chosen.append(best)
                remaining.remove(best)
                known |= best.variables()
            order = self._plans[key] = tuple(chosen)
        return order

    def _estimate(self, t: TriplePattern, known: set[str]) -> int:
        """Rough number of index entries a scan of `t` visits."""
        s, p, o = (not isinstance(x, Var) or x.name in known for x in (t.s, t.p, t.o))
        for slot in (t.s, t.p, t.o):
            if not isinstance(slot, Var) and self.dictionary.lookup(slot) is None:
                return 0  # a term never stored: this pattern ends the search at once
        if s:
            return 1 if o else 10
        if isinstance(t.p, Var):
            return (100 if o else self.index.count()) * (1 if p else 10)
        count = self.index.predicate_count(self.dictionary.lookup(t.p) or 0)
        return max(1, count // 100) if o else count

    def _match(
        self, order: tuple[TriplePattern, ...], step: int, solution: Solution,
        filters: tuple[tuple[Expr, frozenset[str]], ...],
    ) -> Iterator[Solution]:
        if step == len(order):
            yield solution
            return
        best = order[step]
        slots = (best.s, best.p, best.o)
        ids: list[int | None] = []
        for slot in slots:
            term = solution.get(slot.name) if isinstance(slot, Var) else slot
            if term is None:
                ids.append(None)
                continue
            term_id = self.dictionary.lookup(term)
            if term_id is None:
                return  # a term the store has never seen matches nothing
            ids.append(term_id)
        decode = self.dictionary.term
        new_vars = {x.name for x, i in zip(slots, ids, strict=True) if i is None and isinstance(x, Var)}
        ready = tuple(e for e, names in filters if names & new_vars and names <= solution.keys() | new_vars)
        waiting = tuple(f for f in filters if not (f[1] & new_vars and f[1] <= solution.keys() | new_vars))
        test = self.expressions.test
        # Bind first the variables the ready filters read, so a row they reject costs no
        # decoding of its other terms (a range filter rejects most rows of its scan).
        needed = frozenset().union(*(expr_vars(e) for e in ready)) if ready else frozenset()
        positions = sorted(
            (i for i in range(3) if ids[i] is None and isinstance(slots[i], Var)),
            key=lambda i: slots[i].name not in needed,  # type: ignore[union-attr]
        )
        names = [slots[i].name for i in positions]  # type: ignore[union-attr]
        first = sum(1 for n in names if n in needed)
        for found in self.index.match_ids(ids[0], ids[1], ids[2]):
            extended = dict(solution)
            for k, i in enumerate(positions):
                if k == first and ready and not all(test(e, extended) for e in ready):
                    break
                term = decode(found[i])
                if extended.setdefault(names[k], term) != term:
                    break  # the same variable twice in one pattern, bound differently
            else:
                if first == len(positions) and ready and not all(test(e, extended) for e in ready):
                    continue
                yield from self._match(order, step + 1, extended, waiting)


def _pushable_filters(
    pattern: Filter,
) -> tuple[BGP | None, tuple[tuple[Expr, frozenset[str]], ...], tuple[Expr, ...]]:
    """For Filter(…Filter(BGP)): the BGP, the filters its variables cover (pushed down into
    the scan, with their variables) and the rest (tested on complete solutions)."""
    exprs: list[Expr] = []
    node: Pattern = pattern
    while isinstance(node, Filter):
        exprs.extend(_conjuncts(node.expr))
        node = node.inner
    if not isinstance(node, BGP):
        return None, (), ()
    bound = certain_vars(node)
    pushed = tuple((e, expr_vars(e)) for e in exprs if expr_vars(e) <= bound and expr_vars(e)
                   and not _has_exists(e))
    rest = tuple(e for e in exprs if all(e is not p for p, _ in pushed))
    return node, pushed, rest


def _conjuncts(expr: Expr) -> list[Expr]:
    """`a && (b && c)` → [a, b, c]: each part can be pushed down on its own."""
    if isinstance(expr, Call) and expr.op == "and":
        return [part for arg in expr.args for part in _conjuncts(arg)]
    return [expr]


def _has_exists(expr: Expr) -> bool:
    if isinstance(expr, Exists):
        return True
    return isinstance(expr, Call) and any(_has_exists(a) for a in expr.args)


@lru_cache(maxsize=1024)
def substitution_safe(pattern: Pattern) -> bool:
    """Whether evaluating `pattern` with outer bindings substituted gives SPARQL's answer.

    SPARQL evaluates a join's right side on its own; feeding it the left side's bindings is
    the same thing (and much faster) unless a FILTER or BIND inside would see a variable
    it could not see on its own, or a nested OPTIONAL, MINUS, group or sub-query changes
    meaning with outside bindings. Unsafe right sides are evaluated on their own.
    """
    if isinstance(pattern, (BGP, Values)):
        return True
    if isinstance(pattern, (Join, Union)):
        return substitution_safe(pattern.left) and substitution_safe(pattern.right)
    if isinstance(pattern, Filter):
        return substitution_safe(pattern.inner) and expr_vars(pattern.expr) <= certain_vars(pattern.inner)
    if isinstance(pattern, Extend):
        return substitution_safe(pattern.inner) and expr_vars(pattern.expr) <= certain_vars(pattern.inner)
    return False


def certain_vars(pattern: Pattern) -> frozenset[str]:
    """Variables every solution of `pattern` binds."""
    if isinstance(pattern, BGP):
        return frozenset(v for t in pattern.triples for v in t.variables())
    if isinstance(pattern, Join):
        return certain_vars(pattern.left) | certain_vars(pattern.right)
    if isinstance(pattern, Union):
        return certain_vars(pattern.left) & certain_vars(pattern.right)
    if isinstance(pattern, (Filter, LeftJoin, Minus)):
        return certain_vars(pattern.inner if isinstance(pattern, Filter) else pattern.left)
    if isinstance(pattern, Extend):
        return certain_vars(pattern.inner)
    if isinstance(pattern, Values):
        return frozenset(v.name for i, v in enumerate(pattern.variables)
                         if all(row[i] is not None for row in pattern.rows))
    return frozenset()


def expr_vars(expr: Expr) -> frozenset[str]:
    """Variables an expression reads (EXISTS patterns included: they see the solution)."""
    if isinstance(expr, Var):
        return frozenset((expr.name,))
    if isinstance(expr, Call):
        return frozenset().union(*(expr_vars(a) for a in expr.args)) if expr.args else frozenset()
    if isinstance(expr, Exists):
        return frozenset(v for t in _triples(expr.pattern) for v in t.variables())
    return frozenset()


def _triples(pattern: Pattern) -> Iterator[TriplePattern]:
    if isinstance(pattern, BGP):
        yield from pattern.triples
    for name in ("left", "right", "inner"):
        child = getattr(pattern, name, None)
        if child is not None:
            yield from _triples(child)


class HashTable:
    """Solutions evaluated on their own, ready to join: indexed on the variables they all
    bind, so each incoming solution meets only the rows that agree with it (a hash join)."""

    def __init__(self, rows: list[Solution]) -> None:
        self.rows = rows
        self.common = frozenset.intersection(*(frozenset(r) for r in rows)) if rows else frozenset()
        self._indexes: dict[tuple[str, ...], dict[tuple[Term, ...], list[Solution]]] = {}

    def merges(self, s: Solution) -> Iterator[Solution]:
        """Every row compatible with `s`, merged with it."""
        keys = tuple(sorted(self.common & s.keys()))
        if keys:
            index = self._indexes.get(keys)
            if index is None:
                index = self._indexes[keys] = {}
                for r in self.rows:
                    index.setdefault(tuple(r[k] for k in keys), []).append(r)
            candidates = index.get(tuple(s[k] for k in keys), [])
        else:
            candidates = self.rows
        for r in candidates:
            merged = _compatible_merge(s, r)
            if merged is not None:
                yield merged


def _minus_matches(left: Solution, right: Solution) -> bool:
    shared = left.keys() & right.keys()
    return bool(shared) and all(left[n] == right[n] for n in shared)


def _compatible_merge(a: Solution, b: Solution) -> Solution | None:
    merged = dict(a)
    for name, term in b.items():
        if merged.setdefault(name, term) != term:
            return None
    return merged


def aggregate_value(
    aggregate: Aggregate, members: list[Solution], value: Callable[[Expr, Solution], Term]
) -> Term | None:
    """One aggregate over a group's solutions; None when it has no value (an error)."""
    values: list[Term] = []
    for s in members:
        if aggregate.arg is None:
            values.append(terms.TRUE)
            continue
        try:
            values.append(value(aggregate.arg, s))
        except ExprError:
            if aggregate.op != "count":
                return None
    if aggregate.distinct:
        values = list(dict.fromkeys(values))
    op = aggregate.op
    if op == "count":
        return terms.literal(len(values))
    if op == "sample":
        return values[0] if values else None
    if op == "groupConcat":
        try:
            return terms.literal(aggregate.separator.join(string_value(v) for v in values))
        except ExprError:
            return None
    if op in ("min", "max"):
        if not values:
            return None
        pick = min if op == "min" else max
        return pick(values, key=_sort_value)
    numbers = [numeric(v) for v in values]
    if any(n is None for n in numbers):
        return None
    total = sum(numbers)  # type: ignore[arg-type]
    if op == "sum":
        return terms.literal(total)
    return terms.literal(total / len(numbers) if numbers else 0)


def _merge_row(s: Solution, names: list[str], row: tuple[Term | None, ...]) -> Solution | None:
    merged = dict(s)
    for name, term in zip(names, row, strict=True):
        if term is None:
            continue
        if merged.setdefault(name, term) != term:
            return None
    return merged


def _sort_value(term: Term) -> tuple[int, object, str]:
    """SPARQL ORDER BY: blank nodes, then IRIs, then literals (numbers by value)."""
    kind = term[:1]
    if kind == b"B":
        return (1, 0, term.decode("utf-8", "replace"))
    if kind == b"I":
        return (2, 0, term.decode("utf-8", "replace"))
    n = numeric(term)
    if n is not None:
        return (3, n, "")
    return (4, 0, term[1:].decode("utf-8", "replace"))


class _Reversed:
    __slots__ = ("item",)

    def __init__(self, item: object) -> None:
        self.item = item

    def __lt__(self, other: _Reversed) -> bool:
        return other.item < self.item  # type: ignore[no-any-return, operator]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reversed) and other.item == self.item

    def __hash__(self) -> int:
        return hash(self.item)


def _distinct(solutions: Iterator[Solution]) -> Iterator[Solution]:
    seen: set[frozenset[tuple[str, Term]]] = set()
    for s in solutions:
        key = frozenset(s.items())
        if key not in seen:
            seen.add(key)
            yield s
