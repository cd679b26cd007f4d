"""json-rql → algebra (SPEC §4; the grammar is json-rql's, https://json-rql.org).

Every error names the key path of the offending place (`@where[1].@filter`). Implemented:
@select/@distinct (with expressions and aggregates), @construct, @describe, @where as
Subject, array or Group (@graph, @filter, @union, @optional, @values, @bind) and Mizu's
`{"@not": pattern}`, sub-queries, subjects with @id/@type, variables anywhere, references,
value objects, nested subjects, inline filters, `$ref` values, @groupBy/@having,
@orderBy/@limit/@offset and @context. Not yet: lists (`@list`).
"""

from __future__ import annotations

import re
from itertools import count
from typing import Any

from mizu_core import terms
from mizu_core.errors import QueryError
from mizu_core.message.triples import node_path
from mizu_core.message.uris import is_partial, normalise_iri
from mizu_core.query.algebra import (
    BGP,
    Aggregate,
    Call,
    Const,
    Construct,
    Describe,
    Exists,
    Expr,
    Extend,
    Filter,
    Group,
    Join,
    LeftJoin,
    OrderKey,
    Pattern,
    Query,
    Select,
    Slot,
    SubSelect,
    TriplePattern,
    Union,
    Values,
    Var,
)
from mizu_core.query.checks import check_json
from mizu_core.query.context import Context, valid_iri

RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
NODE_PREFIX = "_n"  # fresh variables standing for anonymous nodes (see Parser.fresh)
_VARIABLE = re.compile(r"^\?(\w*)$")
_LANGUAGE = re.compile(r"^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*\Z")  # BCP 47's shape, as in N-Quads
OPERATORS = {
    "@eq": "eq", "@neq": "neq", "@lt": "lt", "@lte": "lte", "@gt": "gt", "@gte": "gte",
    "@and": "and", "@or": "or", "@not": "not", "@in": "in", "@notin": "notin",
    "@regex": "regex", "@bound": "bound", "@str": "str", "@lang": "lang",
    "@langmatches": "langmatches", "@plus": "plus", "@minus": "minus", "@times": "times",
    "@divide": "divide", "@concat": "concat",
}
READ_KEYS = ("@select", "@distinct", "@construct", "@describe")
AGGREGATES = {
    "@count": "count", "@sum": "sum", "@min": "min", "@max": "max", "@avg": "avg",
    "@groupConcat": "groupConcat", "@sample": "sample",
}
_GROUP_KEYS = ("@graph", "@filter", "@union", "@optional", "@values", "@bind", "@not")
_QUERY_KEYS = {
    "@context", "@where", "@orderBy", "@limit", "@offset", "@values", "@groupBy", "@having",
    *READ_KEYS,
}


def is_variable(value: Any) -> bool:
    return isinstance(value, str) and _VARIABLE.match(value) is not None


class Parser:
    """Parses one query; `self_iri` and `message` say where partial `$ref`s point (the
    message holding a stored query)."""

    def __init__(self, self_iri: str | None = None, message: dict[str, Any] | None = None) -> None:
        self._fresh = count()
        self.context = Context()  # the top-level query's context, for compacting results
        self.self_iri = self_iri
        self.message = message

    def fresh(self, node: bool = False) -> Var:
        """A variable no query can name; `node` marks one standing for a subject without
        @id (in a construct template it becomes a blank node; others are left out)."""
        return Var(f"{NODE_PREFIX if node else '_'}{next(self._fresh)}")

    def var(self, text: str) -> Var:
        name = text[1:]
        return Var(name) if name else self.fresh()  # a bare "?" is anonymous

    # -- queries -------------------------------------------------------------------------

    def query(self, q: Any, where: str = "", ctx: Context | None = None) -> Query:
        if not isinstance(q, dict):
            raise QueryError(f"{where or 'query'}: a query must be a JSON object")
        if not where:
            check_json(q)  # JSON values, valid text, bounded depth: before anything reads it
        ctx = (ctx or Context()).extend(q.get("@context"), f"{where}@context")
        if not where:
            self.context = ctx
        for key in q:
            if key not in _QUERY_KEYS:
                raise QueryError(f"{where}{key}: unknown keyword in a query")
        kinds = [k for k in READ_KEYS if k in q]
        if len(kinds) != 1:
            raise QueryError(f"{where or 'query'}: needs exactly one of {', '.join(READ_KEYS)}")
        kind = kinds[0]
        if kind == "@describe":
            return self.describe(q, where, ctx)
        if kind == "@construct":
            template, filters = self.template(q["@construct"], f"{where}@construct", ctx)
            if "@where" in q:
                if filters:
                    raise QueryError(f"{where}@construct: filters belong in @where when there is one")
                pattern = self.where(q["@where"], f"{where}@where", ctx)
            else:
                # Without @where the template is the pattern, each of its triples optional:
                # what matches is filled in, the rest is left out (m-ld's reading).
                pattern = BGP(())
                for t in _parents_first(template):
                    pattern = LeftJoin(pattern, BGP((t,)))
                for f in filters:
                    pattern = Filter(f, pattern)
            if "@values" in q:
                pattern = Join(pattern, self.values(q["@values"], f"{where}@values", ctx))
            return Construct(template, self.modifiers(q, where, ctx, pattern, None, False), shaped=True)
        if "@where" not in q:
            raise QueryError(f"{where}{kind}: needs @where")
        pattern = self.where(q["@where"], f"{where}@where", ctx)
        if "@values" in q:
            pattern = Join(pattern, self.values(q["@values"], f"{where}@values", ctx))
        items = self.projection(q[kind], f"{where}{kind}", ctx)
        return self.modifiers(q, where, ctx, pattern, items, kind == "@distinct")

    def modifiers(
        self, q: dict[str, Any], where: str, ctx: Context, pattern: Pattern,
        items: list[tuple[Var, Expr | None]] | None, distinct: bool,
    ) -> Select:
        """Grouping, aggregates, HAVING, projection expressions and solution modifiers."""
        aggregates: list[tuple[Var, Aggregate]] = []

        def lift(e: Expr) -> Expr:
            return self.lift_aggregates(e, aggregates)

        projected = [(v, lift(e) if e is not None else None) for v, e in items or []]
        having = [lift(self.expr(h, f"{where}@having", ctx)) for h in _as_list(q.get("@having"))]
        order = tuple(OrderKey(lift(k.expr), k.descending)
                      for k in self.order_by(q.get("@orderBy"), f"{where}@orderBy", ctx))
        keys = tuple(self.expr(k, f"{where}@groupBy", ctx) for k in _as_list(q.get("@groupBy")))
        if keys or aggregates:
            pattern = Group(pattern, keys, tuple(aggregates))
        for var, expr in projected:
            if expr is not None:
                pattern = Extend(pattern, var, expr)
        for h in having:
            pattern = Filter(h, pattern)
        projection = None if items is None else tuple(v for v, _ in projected)
        limit = self.integer(q.get("@limit"), f"{where}@limit")
        offset = self.integer(q.get("@offset"), f"{where}@offset") or 0
        return Select(pattern, projection, distinct, order, limit, offset)

    def lift_aggregates(self, expr: Expr, out: list[tuple[Var, Aggregate]]) -> Expr:
        """Replace each aggregate in `expr` by a variable that the Group node binds."""
        if isinstance(expr, Aggregate):
            for var, existing in out:
                if existing == expr:
                    return var
            var = self.fresh()
            out.append((var, expr))
            return var
        if isinstance(expr, Call):
            return Call(expr.op, tuple(self.lift_aggregates(a, out) for a in expr.args))
        return expr

    def describe(self, q: dict[str, Any], where: str, ctx: Context) -> Describe:
        resources: list[bytes] = []
        variables: list[Var] = []
        for i, item in enumerate(_as_list(q["@describe"])):
            if is_variable(item):
                variables.append(self.var(item))
            elif isinstance(item, str):
                resources.append(terms.iri(ctx.expand_id(item)))
            else:
                raise QueryError(f"{where}@describe[{i}]: must be an IRI or a variable")
        select = None
        if "@where" in q:
            pattern = self.where(q["@where"], f"{where}@where", ctx)
            select = self.modifiers(q, where, ctx, pattern, [(v, None) for v in variables], True)
        elif variables:
            raise QueryError(f"{where}@describe: variables need @where")
        return Describe(tuple(resources), tuple(variables), select)

    def template(
        self, value: Any, where: str, ctx: Context
    ) -> tuple[tuple[TriplePattern, ...], list[Expr]]:
        """A construct template's triples, and its inline filters (allowed only when the
        template is its own pattern, without @where)."""
        triples: list[TriplePattern] = []
        filters: list[Expr] = []
        for i, subject in enumerate(_as_list(value)):
            place = f"{where}[{i}]" if isinstance(value, list) else where
            if not isinstance(subject, dict):
                raise QueryError(f"{place}: a template is a subject object")
            self.subject(subject, place, ctx, triples, filters)
        return tuple(triples), filters

    def projection(self, value: Any, where: str, ctx: Context) -> list[tuple[Var, Expr | None]] | None:
        if value == "*":
            return None
        out: list[tuple[Var, Expr | None]] = []
        for i, item in enumerate(_as_list(value)):
            place = f"{where}[{i}]" if isinstance(value, list) else where
            if is_variable(item) and item != "?":
                out.append((Var(item[1:]), None))
            elif isinstance(item, dict) and item and all(is_variable(k) for k in item):
                for name, expr in item.items():
                    out.append((Var(name[1:]), self.expr(expr, f"{place}.{name}", ctx)))
            else:
                raise QueryError(f"{place}: '{item}' is not a variable or {{\"?var\": expression}}")
        return out

    def integer(self, value: Any, where: str) -> int | None:
        if value is None:
            return None
        if type(value) is not int or value < 0:
            raise QueryError(f"{where}: must be a non-negative integer")
        return value

    def order_by(self, value: Any, where: str, ctx: Context) -> tuple[OrderKey, ...]:
        if value is None:
            return ()
        items = value if isinstance(value, list) else [value]
        keys = []
        for i, item in enumerate(items):
            place = f"{where}[{i}]" if isinstance(value, list) else where
            if isinstance(item, dict) and len(item) == 1 and set(item) <= {"@asc", "@desc"}:
                (direction, expr), = item.items()
                keys.append(OrderKey(self.expr(expr, f"{place}.{direction}", ctx), direction == "@desc"))
            else:
                keys.append(OrderKey(self.expr(item, place, ctx)))
        return tuple(keys)

    # -- patterns ------------------------------------------------------------------------

    def where(self, value: Any, where: str, ctx: Context) -> Pattern:
        if isinstance(value, list):
            # A filter-only or `@not`-only element constrains the whole conjunction, as a
            # FILTER does its whole group in SPARQL (it may name variables of any element).
            filters: list[Expr] = []
            patterns = []
            for i, v in enumerate(value):
                place = f"{where}[{i}]"
                if isinstance(v, dict) and v and set(v) <= {"@filter", "@not", "@context"} and (
                    "@filter" in v or "@not" in v
                ):
                    local = ctx.extend(v.get("@context"), f"{place}.@context")
                    for j, n in enumerate(_as_list(v.get("@not"))):
                        at = f"{place}.@not[{j}]" if isinstance(v["@not"], list) else f"{place}.@not"
                        filters.append(Exists(self.where(n, at, local), negated=True))
                    for j, f in enumerate(_as_list(v.get("@filter"))):
                        at = f"{place}.@filter[{j}]" if isinstance(v["@filter"], list) else f"{place}.@filter"
                        filters.append(self.expr(f, at, local))
                else:
                    patterns.append(self.element(v, place, ctx))
            pattern = self.conjunction(patterns)
            for f in filters:
                pattern = Filter(f, pattern)
            return pattern
        return self.element(value, where, ctx)

    def conjunction(self, patterns: list[Pattern]) -> Pattern:
        """Join patterns, merging neighbouring BGPs so the planner sees them together."""
        out: Pattern | None = None
        for p in patterns:
            if out is None:
                out = p
            elif isinstance(out, BGP) and isinstance(p, BGP):
                out = BGP(out.triples + p.triples)
            else:
                out = Join(out, p)
        return out if out is not None else BGP(())

    def element(self, value: Any, where: str, ctx: Context) -> Pattern:
        if isinstance(value, list):
            return self.where(value, where, ctx)  # a nested array is a group
        if not isinstance(value, dict):
            raise QueryError(f"{where}: a pattern must be an object")
        ctx = ctx.extend(value.get("@context"), f"{where}.@context")
        if any(k in value for k in READ_KEYS):
            sub = self.query(value, f"{where}.", ctx)
            if not isinstance(sub, Select):
                raise QueryError(f"{where}: a sub-query must be @select or @distinct")
            return SubSelect(sub)
        if any(k in value for k in _GROUP_KEYS):
            return self.group(value, where, ctx)
        triples: list[TriplePattern] = []
        filters: list[Expr] = []
        self.subject(value, where, ctx, triples, filters)
        pattern: Pattern = BGP(tuple(triples))
        for f in filters:
            pattern = Filter(f, pattern)
        return pattern

    def group(self, value: dict[str, Any], where: str, ctx: Context) -> Pattern:
        for key in value:
            if key not in _GROUP_KEYS and key != "@context":
                raise QueryError(f"{where}.{key}: not allowed in a group (subjects go in @graph)")
        parts: list[Pattern] = []
        if "@graph" in value:
            parts.append(self.where(value["@graph"], f"{where}.@graph", ctx))
        if "@union" in value:
            branches = value["@union"]
            if not isinstance(branches, list) or not branches:
                raise QueryError(f"{where}.@union: must be a non-empty array of patterns")
            union = self.where(branches[0], f"{where}.@union[0]", ctx)
            for i, b in enumerate(branches[1:], 1):
                union = Union(union, self.where(b, f"{where}.@union[{i}]", ctx))
            parts.append(union)
        if "@values" in value:
            parts.append(self.values(value["@values"], f"{where}.@values", ctx))
        pattern = self.conjunction(parts)
        if "@bind" in value:
            binds = value["@bind"] if isinstance(value["@bind"], list) else [value["@bind"]]
            for i, b in enumerate(binds):
                place = f"{where}.@bind[{i}]" if isinstance(value["@bind"], list) else f"{where}.@bind"
                if not isinstance(b, dict):
                    raise QueryError(f"{place}: must map variables to expressions")
                for name, expr in b.items():
                    if not is_variable(name):
                        raise QueryError(f"{place}.{name}: not a variable")
                    pattern = Extend(pattern, Var(name[1:]), self.expr(expr, f"{place}.{name}", ctx))
        if "@optional" in value:
            optionals = value["@optional"] if isinstance(value["@optional"], list) else [value["@optional"]]
            for i, o in enumerate(optionals):
                place = f"{where}.@optional[{i}]" if isinstance(value["@optional"], list) else f"{where}.@optional"
                right = self.where(o, place, ctx)
                # As in SPARQL, the optional group's own filters are the left join's
                # condition: they see the solution being extended, not just the group.
                conditions: list[Expr] = []
                while isinstance(right, Filter):
                    conditions.append(right.expr)
                    right = right.inner
                condition = None
                if conditions:
                    condition = conditions[0] if len(conditions) == 1 else Call("and", tuple(conditions))
                pattern = LeftJoin(pattern, right, condition)
        if "@not" in value:
            negated = value["@not"] if isinstance(value["@not"], list) else [value["@not"]]
            for i, n in enumerate(negated):
                place = f"{where}.@not[{i}]" if isinstance(value["@not"], list) else f"{where}.@not"
                pattern = Filter(Exists(self.where(n, place, ctx), negated=True), pattern)
        if "@filter" in value:
            filters = value["@filter"] if isinstance(value["@filter"], list) else [value["@filter"]]
            for i, f in enumerate(filters):
                place = f"{where}.@filter[{i}]" if isinstance(value["@filter"], list) else f"{where}.@filter"
                pattern = Filter(self.expr(f, place, ctx), pattern)
        return pattern

    def values(self, value: Any, where: str, ctx: Context) -> Values:
        rows_in = value if isinstance(value, list) else [value]
        names: list[str] = []
        for i, row in enumerate(rows_in):
            if not isinstance(row, dict):
                raise QueryError(f"{where}[{i}]: each row maps variables to values")
            for name in row:
                if not is_variable(name):
                    raise QueryError(f"{where}[{i}].{name}: not a variable")
                if name[1:] not in names:
                    names.append(name[1:])
        rows = []
        for i, row in enumerate(rows_in):
            rows.append(tuple(
                self.constant(row[f"?{n}"], f"{where}[{i}].?{n}", ctx) if f"?{n}" in row else None
                for n in names
            ))
        return Values(tuple(Var(n) for n in names), tuple(rows))

    def subject(
        self, value: dict[str, Any], where: str, ctx: Context,
        triples: list[TriplePattern], filters: list[Expr],
    ) -> Slot:
        """Add the patterns of a Subject; return the slot that stands for it."""
        node: Slot
        raw_id = value.get("@id")
        if raw_id is None:
            node = self.fresh(node=True)
        elif isinstance(raw_id, dict):
            node = self.inline_filter(raw_id, f"{where}.@id", ctx, filters)
        elif is_variable(raw_id):
            node = self.var(raw_id)
        elif isinstance(raw_id, str):
            node = terms.iri(ctx.expand_id(raw_id))
        else:
            raise QueryError(f"{where}.@id: must be an IRI, a variable or an inline filter")
        if not any(k not in ("@id", "@context") for k in value):
            # Only an @id: the node must exist, that is, have some property.
            triples.append(TriplePattern(node, self.fresh(), self.fresh()))
        for key, objects in value.items():
            if key in ("@id", "@context"):
                continue
            place = f"{where}.{key}"
            if key == "@type":
                p: Slot = terms.iri(RDF_TYPE)
            elif key.startswith("@"):
                raise QueryError(f"{place}: unknown keyword")
            elif is_variable(key):
                p = self.var(key)
            else:
                p = terms.iri(ctx.expand_key(key))
            items = objects if isinstance(objects, list) else [objects]
            for i, item in enumerate(items):
                item_place = f"{place}[{i}]" if isinstance(objects, list) else place
                o = self.object(item, item_place, ctx, key, triples, filters)
                triples.append(TriplePattern(node, p, o))
        return node

    def object(
        self, value: Any, where: str, ctx: Context, key: str,
        triples: list[TriplePattern], filters: list[Expr],
    ) -> Slot:
        if is_variable(value):
            return self.var(value)
        if isinstance(value, dict):
            if set(value) == {"$ref"} and isinstance(value["$ref"], str):
                return terms.iri(self.ref(value["$ref"], where))
            if set(value) == {"@vocab"}:
                return terms.iri(ctx.expand_key(_iri_text(value["@vocab"], f"{where}.@vocab")))
            if "@value" in value:
                return self.value_object(value, where, ctx)
            if any(k in OPERATORS for k in value):
                return self.inline_filter(value, where, ctx, filters)
            if set(value) == {"@id"} and isinstance(value["@id"], str):  # a reference
                ref = value["@id"]
                return self.var(ref) if is_variable(ref) else terms.iri(ctx.expand_id(ref))
            return self.subject(value, where, ctx, triples, filters)
        if isinstance(value, str) and key == "@type":
            return terms.iri(ctx.expand_key(value))
        if isinstance(value, str) and key in ctx.iri_valued:
            return terms.iri(ctx.expand_id(value))
        return self.literal(value, where)

    def ref(self, uri: str, where: str) -> str:
        if not is_partial(uri):
            return valid_iri(normalise_iri(uri))
        if self.self_iri is None or self.message is None:
            raise QueryError(f"{where}: a partial $ref ('{uri}') needs the message holding the query (use --cid)")
        return self.self_iri + node_path(self.message, uri)

    def inline_filter(
        self, value: dict[str, Any], where: str, ctx: Context, filters: list[Expr]
    ) -> Var:
        """`{"@gt": 40}` or `{"@id": "?x", "@in": [...]}`: a variable plus filters on it."""
        named = value.get("@id", value.get("@value"))
        if named is not None and not is_variable(named):
            raise QueryError(f"{where}: an inline filter's @id must be a variable")
        var = self.var(named) if named is not None else self.fresh()
        for op, arg in value.items():
            if op in ("@id", "@value"):
                continue
            if op not in OPERATORS:
                raise QueryError(f"{where}.{op}: unknown operator")
            args = arg if isinstance(arg, list) and op in ("@in", "@notin") else [arg]
            operands = [self.expr(a, f"{where}.{op}", ctx) for a in args]
            filters.append(Call(OPERATORS[op], (var, *operands)))
        return var

    def value_object(self, value: dict[str, Any], where: str, ctx: Context) -> Slot:
        raw = value["@value"]
        if is_variable(raw):
            raise QueryError(f"{where}.@value: a variable here is not supported")
        for key in value:
            if key not in ("@value", "@type", "@language", "@index"):
                raise QueryError(f"{where}.{key}: not allowed in a value object")
        if type(raw) not in (str, int, float, bool):
            raise QueryError(f"{where}.@value: must be a string, a number or a boolean")
        for key in ("@language", "@type"):
            if key in value and not isinstance(value[key], str):
                raise QueryError(f"{where}.{key}: must be a string")
        if "@language" in value:
            if _LANGUAGE.match(value["@language"]) is None:
                raise QueryError(f"{where}.@language: {value['@language']!r:.40} is not a language tag")
            return terms.lang_string(str(raw), value["@language"])
        if "@type" in value:
            datatype = ctx.expand_id(value["@type"]) if ":" in value["@type"] else ctx.expand_key(value["@type"])
            return typed_literal(str(raw) if not isinstance(raw, bool) else str(raw).lower(), datatype)
        return self.literal(raw, where)

    def literal(self, value: Any, where: str) -> Slot:
        if isinstance(value, (str, bool, int, float)):
            return terms.literal(value)
        raise QueryError(f"{where}: '{value}' is not a value json-rql can match")

    def constant(self, value: Any, where: str, ctx: Context) -> bytes:
        if isinstance(value, dict):
            if set(value) == {"@id"}:
                return terms.iri(ctx.expand_id(_iri_text(value["@id"], f"{where}.@id")))
            if set(value) == {"@vocab"}:
                return terms.iri(ctx.expand_key(_iri_text(value["@vocab"], f"{where}.@vocab")))
            if "@value" in value:
                slot = self.value_object(value, where, ctx)
                assert isinstance(slot, bytes)
                return slot
        if is_variable(value):
            raise QueryError(f"{where}: a variable is not a value")
        slot = self.literal(value, where)
        assert isinstance(slot, bytes)
        return slot

    # -- expressions ---------------------------------------------------------------------

    def aggregate(self, value: dict[str, Any], op: str, where: str, ctx: Context) -> Aggregate:
        place = f"{where}.{op}"
        for key in value:
            if key not in (op, "@distinct", "@separator"):
                raise QueryError(f"{where}.{key}: not allowed beside {op}")
        arg = value[op]
        expr = None if arg == "*" and op == "@count" else self.expr(arg, place, ctx)
        separator = value.get("@separator", " ")
        if not isinstance(separator, str):
            raise QueryError(f"{where}.@separator: must be a string")
        distinct = value.get("@distinct", False)
        if not isinstance(distinct, bool):
            raise QueryError(f"{where}.@distinct: must be true or false")
        return Aggregate(AGGREGATES[op], expr, distinct, separator)

    def expr(self, value: Any, where: str, ctx: Context) -> Expr:
        if is_variable(value):
            return self.var(value)
        if isinstance(value, dict):
            if set(value) in ({"@id"}, {"@vocab"}) or "@value" in value:
                return Const(self.constant(value, where, ctx))
            if len(value) != 1 and not any(k in value for k in AGGREGATES):
                raise QueryError(f"{where}: an expression has exactly one operator")
            if "@distinct" in value and len(value) == 2:
                value = {k: v for k, v in value.items() if k != "@distinct"} | {"@distinct": True}
            aggregate = next((k for k in value if k in AGGREGATES), None)
            if aggregate is not None:
                return self.aggregate(value, aggregate, where, ctx)
            (op, arg), = value.items()
            if op not in OPERATORS:
                if op.startswith("@"):
                    raise QueryError(f"{where}.{op}: unknown operator")
                return Call("iri:" + ctx.expand_key(op), (self.expr(arg, f"{where}.{op}", ctx),))
            args = arg if isinstance(arg, list) else [arg]
            if op in ("@in", "@notin") and len(args) == 2 and isinstance(args[1], list):
                args = [args[0], *args[1]]
            return Call(OPERATORS[op], tuple(
                self.expr(a, f"{where}.{op}[{i}]" if isinstance(arg, list) else f"{where}.{op}", ctx)
                for i, a in enumerate(args)
            ))
        return Const(self.constant(value, where, ctx))


def _iri_text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise QueryError(f"{where}: must be an IRI (a string)")
    return value


def _parents_first(triples: tuple[TriplePattern, ...]) -> list[TriplePattern]:
    """Template triples ordered so that a nested subject's triples follow the triple that
    links to it (its variable is then bound by the parent when its own triples match)."""
    linked = {t.o for t in triples if isinstance(t.o, Var)}
    bound: set[Slot] = set()
    ordered: list[TriplePattern] = []
    remaining = list(triples)
    while remaining:
        ready = [t for t in remaining if t.s not in linked or t.s in bound] or remaining[:1]
        for t in ready:
            ordered.append(t)
            remaining.remove(t)
            bound.add(t.o)
    return ordered


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def typed_literal(lexical: str, datatype: str) -> bytes:
    """A typed literal in its canonical term form where Mizu has one (integers, doubles…)."""
    try:
        if datatype == terms.XSD_STRING:
            return terms.literal(lexical)
        if datatype == terms.XSD_INTEGER:
            return terms.literal(int(lexical))
        if datatype == terms.XSD_DOUBLE:
            return terms.literal(float(lexical))
        if datatype == terms.XSD_BOOLEAN and lexical in ("true", "false"):
            return terms.literal(lexical == "true")
    except ValueError:
        pass
    return terms.typed(lexical, datatype)


def parse(query: Any) -> Query:
    """Parse a json-rql query (already decoded from JSON)."""
    return Parser().query(query)
