"""Streaming evaluation of the algebra over the triple index.

Solutions flow through generators, so `@limit` stops the scans early and the first row is
ready before the last is computed. A BGP is matched by index nested loops: the cheapest
scan goes first (from what is bound and per-predicate counts), each pattern is one range
scan, and the plan runs as generated Python (plans.py).
Joins feed the left side's solutions into the right (substitution), which makes OPTIONAL,
NOT EXISTS and UNION cheap when the left side binds what the right side needs.

Inside the evaluator a variable is bound to the store's id for its term (an int), or to the
term itself (bytes) only when the store does not hold it (a BIND or aggregate result). So
joins, DISTINCT, GROUP BY and COUNT compare integers, and a term is decoded only when an
expression reads it or a row is handed out.
"""

from __future__ import annotations

import heapq
import itertools
import sys
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from typing import Any

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
from mizu_core.query.deadline import Deadline
from mizu_core.query.expressions import (
    ExprError,
    ExpressionEvaluator,
    Solution,
    Value,
    _number_term,
    numeric,
    string_value,
)
from mizu_core.query.plans import Match, Step, compile_plan
from mizu_core.repo.index import TripleIndex
from mizu_core.terms import Term

Filters = tuple[tuple[Expr, frozenset[str]], ...]  # expressions with the variables they read


class Evaluator:
    """Evaluates queries over one index snapshot; `deadline` bounds the work (none: no
    limit)."""

    def __init__(self, index: TripleIndex, deadline: Deadline | None = None) -> None:
        self.index = index
        self.deadline = deadline if deadline is not None else Deadline()
        self.dictionary = index.dictionary
        self.expressions = ExpressionEvaluator(self._exists, self.decode)
        self._predicate_counts: dict[int, int] = {}
        # Plans by (id(BGP), id(filters), bound variables); each entry keeps its BGP and
        # filters alive, so their ids cannot be reused while cached. Ids, because hashing
        # the patterns themselves for every incoming solution costs more than the lookup.
        self._plans: dict[tuple[int, int, frozenset[str]], tuple[
            BGP, Filters, Callable[[Solution], bool] | None, Match | None]] = {}

    def decode(self, value: Value) -> Term:
        return value if type(value) is bytes else self.dictionary.term(value)  # type: ignore[arg-type]

    def encode(self, term: Term) -> Value:
        """The id of a term the store holds, else the term: the one form a value takes."""
        term_id = self.dictionary.lookup(term)
        return term if term_id is None else term_id

    def select(self, query: Select, hidden: bool = False) -> Iterator[dict[str, Term]]:
        """Solutions of a query as terms; `hidden` keeps the variables no query can name
        (a construct template's anonymous values need them)."""
        decode = self.decode
        for s in self.solutions(query, hidden):
            yield {name: decode(v) for name, v in s.items()}

    def solutions(self, query: Select, hidden: bool = False, project: bool = True) -> Iterator[Solution]:
        """`select` without decoding: values are ids (see `decode`). With project=False
        rows keep every variable (the caller projects; not with DISTINCT, which needs
        rows projected)."""
        solutions = self.eval(query.pattern, iter([{}]))
        if query.order_by:
            key = self._order_key(query)
            if query.limit is not None and not query.distinct:
                # Only the first offset + limit rows are ever printed: keep just those.
                solutions = iter(heapq.nsmallest(min(query.offset + query.limit, sys.maxsize),
                                                 solutions, key=key))
            else:
                solutions = iter(sorted(solutions, key=key))
        if query.projection is not None:
            names = [v.name for v in query.projection]
            if query.distinct:
                solutions = _distinct_projected(solutions, names)
            elif project:
                solutions = ({n: s[n] for n in names if n in s} for s in solutions)
        else:
            if not hidden:
                solutions = ({n: t for n, t in s.items() if not n.startswith("_")} for s in solutions)
            if query.distinct:
                solutions = _distinct(solutions)
        # Past sys.maxsize a limit or an offset cannot be reached: the same as the largest.
        offset = min(query.offset, sys.maxsize)
        stop = None if query.limit is None else min(offset + query.limit, sys.maxsize)
        return itertools.islice(solutions, offset, stop)

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
                yield from self._bgp(pattern, s, ())
        elif isinstance(pattern, Join):
            left = self.eval(pattern.left, solutions)
            if substitution_safe(pattern.right):
                yield from self.eval(pattern.right, left)
            else:
                yield from self._join_each(left, lambda: list(self.eval(pattern.right, iter([{}]))))
        elif isinstance(pattern, Union):
            for s in solutions:
                yield from self._each(pattern.left, s)
                yield from self._each(pattern.right, s)
        elif isinstance(pattern, LeftJoin):
            condition = None if pattern.expr is None else self.expressions.compile_filter([pattern.expr])
            safe = substitution_safe(pattern.right)
            right: HashTable | None = None
            for s in self.eval(pattern.left, solutions):
                if safe:
                    candidates: Iterable[Solution] = self._each(pattern.right, s)
                else:
                    if right is None:
                        right = HashTable(list(self.eval(pattern.right, iter([{}]))), self.deadline)
                    candidates = right.merges(s)
                matched = False
                for m in candidates:
                    if condition is None or condition(m):
                        matched = True
                        yield m
                if not matched:
                    yield s
        elif isinstance(pattern, Minus):
            removed: MinusTable | None = None
            for s in self.eval(pattern.left, solutions):
                if removed is None:
                    removed = MinusTable(list(self.eval(pattern.right, iter([{}]))), self.deadline)
                if not removed.removes(s):
                    yield s
        elif isinstance(pattern, Filter):
            bgp, pushed, rest = _pushable_filters(pattern)
            compile_filter = self.expressions.compile_filter
            if bgp is not None:
                # Filters over a BGP are checked as soon as their variables are bound.
                check = compile_filter(rest)
                for s in solutions:
                    for found in self._bgp(bgp, s, pushed):
                        if check is None or check(found):
                            yield found
                return
            test = compile_filter([pattern.expr])
            for s in self.eval(pattern.inner, solutions):
                if test is None or test(s):
                    yield s
        elif isinstance(pattern, Extend):
            name = pattern.var.name
            for s in self.eval(pattern.inner, solutions):
                try:
                    yield {**s, name: self.encode(self.expressions.value(pattern.expr, s))}
                except ExprError:
                    yield s
        elif isinstance(pattern, Group):
            yield from self._join_each(solutions, lambda: self._groups(pattern))
        elif isinstance(pattern, SubSelect):
            yield from self._join_each(solutions, lambda: list(self.solutions(pattern.select)))
        elif isinstance(pattern, Values):
            encode = self.encode
            rows = [tuple(None if t is None else encode(t) for t in row) for row in pattern.rows]
            names = [v.name for v in pattern.variables]
            dl = self.deadline
            for s in solutions:
                for row in rows:
                    dl.left -= 1
                    if dl.left <= 0:
                        dl.left = dl.tick()
                    merged = _merge_row(s, names, row)
                    if merged is not None:
                        yield merged
        else:  # pragma: no cover - the parser builds only the patterns above
            raise TypeError(f"cannot evaluate {type(pattern).__name__}")

    def _each(self, pattern: Pattern, solution: Solution) -> Iterator[Solution]:
        """`pattern` with one solution's bindings substituted (a BGP directly)."""
        if isinstance(pattern, BGP):
            return self._bgp(pattern, solution, ())
        return self.eval(pattern, iter([solution]))

    def _join_each(
        self, solutions: Iterator[Solution], compute: Callable[[], list[Solution]]
    ) -> Iterator[Solution]:
        """Join an independently evaluated part (group, sub-query), computed once, with each
        incoming solution: SPARQL evaluates these bottom-up, not by substitution."""
        table: HashTable | None = None
        for s in solutions:
            if table is None:
                table = HashTable(compute(), self.deadline)
            yield from table.merges(s)

    def _groups(self, group: Group) -> list[Solution]:
        """Group solutions and fold each into its group's aggregates as it arrives, so
        memory grows with the number of groups, not of rows."""
        value, encode = self.expressions.value, self.encode
        names = [k.name if isinstance(k, Var) else None for k in group.keys]
        by_variables = None not in names  # then the ids are the key: no decoding
        # key → the group's aggregators, and their `add`s (bound once per group)
        groups: dict[Any, tuple[list[Aggregator], list[Callable[[Solution], None]]]] = {}
        single = names[0] if by_variables and len(names) == 1 else None
        for s in self.eval(group.inner, iter([{}])):
            key: Any
            if single is not None:
                key = s.get(single)  # one variable: its value is the key (a tuple later)
            elif by_variables:
                key = tuple([s.get(name) for name in names])  # type: ignore[arg-type]
            else:
                values: list[Value | None] = []
                for k in group.keys:
                    try:
                        values.append(encode(value(k, s)))
                    except ExprError:
                        values.append(None)
                key = tuple(values)
            found = groups.get(key)
            if found is None:
                aggregators = [Aggregator(a, value) for _, a in group.aggregates]
                found = groups[key] = (aggregators, [a.adder() for a in aggregators])
            for add in found[1]:
                add(s)
        buckets = {((k,) if single is not None else k): aggregators
                   for k, (aggregators, _) in groups.items()}
        if not buckets and not group.keys:  # aggregates over nothing still give one row
            buckets[()] = [Aggregator(a, value) for _, a in group.aggregates]
        out = []
        for group_key, aggregators in buckets.items():
            row: Solution = {}
            for k, v in zip(group.keys, group_key, strict=True):
                if isinstance(k, Var) and v is not None:
                    row[k.name] = v
            for (var, _), aggregator in zip(group.aggregates, aggregators, strict=True):
                result = aggregator.result()
                if result is not None:
                    row[var.name] = encode(result)
            out.append(row)
        return out

    def _exists(self, expr: Exists, solution: Solution) -> bool:
        return next(self.eval(expr.pattern, iter([solution])), None) is not None

    def _bgp(self, bgp: BGP, solution: Solution, filters: Filters) -> Iterator[Solution]:
        """Match a BGP; `filters` (expression, variables) are tested the moment their
        variables are all bound, pruning the search early."""
        bound = frozenset(solution)
        key = (id(bgp), id(filters), bound)
        plan = self._plans.get(key)
        if plan is None:
            # Filters the caller's solution already binds are tested at once; the others
            # as soon as a step binds their last variable.
            now = self.expressions.compile_filter(e for e, names in filters if names <= bound)
            later = tuple(f for f in filters if not f[1] <= bound)
            plan = self._plans[key] = (bgp, filters, now, self._plan(bgp.triples, bound, later))
        _, _, now, match = plan
        if match is not None and (now is None or now(solution)):
            return match(solution)
        return iter(())

    def _plan(
        self, triples: tuple[TriplePattern, ...], bound: frozenset[str], filters: Filters
    ) -> Match | None:
        """Join order for a BGP given the variables already bound: cheapest scan first,
        estimated from what is bound and the per-predicate statistics; compiled to nested
        loops. None when a constant is a term the store has never held: nothing matches."""
        ids: dict[Term, int] = {}
        for t in triples:
            for slot in (t.s, t.p, t.o):
                if not isinstance(slot, Var):
                    term_id = self.dictionary.lookup(slot)
                    if term_id is None:
                        return None
                    ids[slot] = term_id
        # Each pattern's variable names (None at constants) and its predicate's size, once:
        # the greedy order below estimates every remaining pattern at every step.
        remaining = [(t, tuple(x.name if isinstance(x, Var) else None for x in (t.s, t.p, t.o)),
                      None if isinstance(t.p, Var) else self._predicate_count(ids[t.p]))
                     for t in triples]
        known, steps = set(bound), []
        waiting = list(filters)
        while remaining:
            best = min(remaining, key=lambda entry: _estimate(entry[1], entry[2], known, self.index))
            remaining.remove(best)
            t, names, _ = best
            known.update(n for n in names if n is not None)
            ready = None
            if waiting:
                ready = self.expressions.compile_filter(e for e, needs in waiting if needs <= known)
                waiting = [f for f in waiting if not f[1] <= known]
            steps.append(Step(
                ids=tuple(None if isinstance(x, Var) else ids[x] for x in (t.s, t.p, t.o)),
                names=names,
                ready=ready,
            ))
        return compile_plan(tuple(steps), bound, self.index, self.deadline)

    def _predicate_count(self, term_id: int) -> int:
        count = self._predicate_counts.get(term_id)
        if count is None:
            count = self._predicate_counts[term_id] = self.index.predicate_count(term_id)
        return count


def _estimate(names: tuple[str | None, ...], predicate_count: int | None, known: set[str],
              index: TripleIndex) -> int:
    """Rough number of index entries a scan visits of a pattern with these variables (None:
    a constant) and predicate size (None: the predicate is a variable)."""
    s_name, p_name, o_name = names
    s = s_name is None or s_name in known
    o = o_name is None or o_name in known
    if s:
        return 1 if o else 10
    if predicate_count is None:
        p = p_name in known
        return (100 if o else index.count()) * (1 if p else 10)
    return max(1, predicate_count // 100) if o else predicate_count


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

    def __init__(self, rows: list[Solution], deadline: Deadline) -> None:
        self.rows = rows
        self.common = frozenset.intersection(*(frozenset(r) for r in rows)) if rows else frozenset()
        self._indexes: dict[tuple[str, ...], dict[tuple[Value, ...], list[Solution]]] = {}
        self.deadline = deadline

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
        dl = self.deadline
        for r in candidates:
            dl.left -= 1
            if dl.left <= 0:
                dl.left = dl.tick()
            merged = _compatible_merge(s, r)
            if merged is not None:
                yield merged


class MinusTable:
    """The right side of a MINUS, ready to test left solutions. When its rows all bind
    the same variables (the usual case), they are hashed on the variables a left solution
    shares with them: one lookup per left solution instead of a scan of every row."""

    def __init__(self, rows: list[Solution], deadline: Deadline) -> None:
        self.rows = rows
        self.deadline = deadline
        names = {frozenset(r) for r in rows}
        self.uniform: frozenset[str] | None = names.pop() if len(names) == 1 else None
        self._indexes: dict[tuple[str, ...], set[tuple[Value, ...]]] = {}

    def removes(self, s: Solution) -> bool:
        if not self.rows:
            return False
        if self.uniform is not None:
            keys = tuple(sorted(self.uniform & s.keys()))
            if not keys:
                return False  # nothing shared: MINUS removes nothing
            index = self._indexes.get(keys)
            if index is None:
                index = self._indexes[keys] = {tuple(r[k] for k in keys) for r in self.rows}
            return tuple(s[k] for k in keys) in index
        dl = self.deadline
        for r in self.rows:
            dl.left -= 1
            if dl.left <= 0:
                dl.left = dl.tick()
            if _minus_matches(s, r):
                return True
        return False


def _minus_matches(left: Solution, right: Solution) -> bool:
    shared = left.keys() & right.keys()
    return bool(shared) and all(left[n] == right[n] for n in shared)


def _compatible_merge(a: Solution, b: Solution) -> Solution | None:
    merged = dict(a)
    for name, term in b.items():
        if merged.setdefault(name, term) != term:
            return None
    return merged


class Aggregator:
    """One aggregate of one group, fed one solution at a time. An error in any value
    (except for COUNT, which skips it) leaves the aggregate without a value."""

    def __init__(self, aggregate: Aggregate, value: Callable[[Expr, Solution], Term]) -> None:
        self.op, self.arg, self.separator = aggregate.op, aggregate.arg, aggregate.separator
        self.value = value
        self.seen: set[object] | None = set() if aggregate.distinct else None
        self.count = 0
        self.total: int | float = 0
        self.best: tuple[tuple[int, object, str], Term] | None = None  # min/max, sample
        self.parts: list[str] = []
        self.failed = False

    def adder(self) -> Callable[[Solution], None]:
        """`add`, or for a plain COUNT of a variable (the common case) a faster twin."""
        if self.op == "count" and isinstance(self.arg, Var) and self.seen is None:
            name = self.arg.name

            def count(s: Solution) -> None:
                if s.get(name) is not None:
                    self.count += 1

            return count
        return self.add

    def add(self, s: Solution) -> None:
        op, arg = self.op, self.arg
        if self.failed:
            return
        item: object
        if arg is None:  # COUNT(*): DISTINCT counts distinct solutions
            item = frozenset(s.items()) if self.seen is not None else None
        elif op == "count" and isinstance(arg, Var):
            item = s.get(arg.name)  # the id stands for its term: no decoding to count
            if item is None:
                return
        else:
            try:
                item = self.value(arg, s)
            except ExprError:
                self.failed = op != "count"
                return
        if self.seen is not None:
            if item in self.seen:
                return
            self.seen.add(item)
        self.count += 1
        if op == "count":
            return
        term: Term = item  # type: ignore[assignment]
        if op == "sample":
            if self.best is None:
                self.best = ((0, 0, ""), term)
        elif op == "groupConcat":
            try:
                self.parts.append(string_value(term))
            except ExprError:
                self.failed = True
        elif op in ("min", "max"):
            key = _sort_value(term)
            if self.best is None or (key < self.best[0] if op == "min" else self.best[0] < key):
                self.best = (key, term)
        else:  # sum, avg
            n = numeric(term)
            if n is None:
                self.failed = True
            else:
                try:
                    self.total += n
                except OverflowError:  # a huge integer beside a double
                    self.failed = True

    def result(self) -> Term | None:
        if self.failed:
            return None
        op = self.op
        if op == "count":
            return terms.literal(self.count)
        if op in ("sample", "min", "max"):
            return None if self.best is None else self.best[1]
        if op == "groupConcat":
            return terms.literal(self.separator.join(self.parts))
        try:
            if op == "sum":
                return _number_term(self.total)
            return _number_term(self.total / self.count if self.count else 0)
        except (OverflowError, ExprError):
            return None


def _merge_row(s: Solution, names: list[str], row: tuple[Value | None, ...]) -> Solution | None:
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


def _distinct_projected(solutions: Iterator[Solution], names: list[str]) -> Iterator[Solution]:
    """Projected on `names`, each distinct row once: a duplicate costs a key, not a row."""
    seen: set[tuple[Value | None, ...]] = set()
    for s in solutions:
        key = tuple(map(s.get, names))  # None: unbound (no bound value is None)
        if key not in seen:
            seen.add(key)
            yield {n: s[n] for n in names if n in s}


def _distinct(solutions: Iterator[Solution]) -> Iterator[Solution]:
    seen: set[frozenset[tuple[str, Value]]] = set()
    for s in solutions:
        key = frozenset(s.items())
        if key not in seen:
            seen.add(key)
            yield s
