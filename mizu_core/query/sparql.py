"""SPARQL 1.1 → the same algebra as json-rql, through rdflib's maintained parser.

rdflib costs ~0.5 s to import, so this module is imported only for `--sparql`. rdflib
parses and translates to SPARQL algebra; this module maps that algebra onto Mizu's.
SELECT, CONSTRUCT, DESCRIBE and ASK are supported; named graphs (GRAPH, FROM) are not:
Mizu's store is one graph.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from mizu_core import terms
from mizu_core.errors import QueryError
from mizu_core.query import algebra as a
from mizu_core.query.checks import check_text
from mizu_core.query.context import Context, valid_iri
from mizu_core.query.jsonrql import NODE_PREFIX, typed_literal

_RELATIONS = {"=": "eq", "!=": "neq", "<": "lt", ">": "gt", "<=": "lte", ">=": "gte"}
_AGGREGATES = {
    "Aggregate_Count": "count", "Aggregate_Sum": "sum", "Aggregate_Min": "min",
    "Aggregate_Max": "max", "Aggregate_Avg": "avg", "Aggregate_Sample": "sample",
    "Aggregate_GroupConcat": "groupConcat",
}
_BUILTINS = {
    "Builtin_REGEX": "regex", "Builtin_STR": "str", "Builtin_LANG": "lang",
    "Builtin_LANGMATCHES": "langmatches", "Builtin_BOUND": "bound", "Builtin_CONCAT": "concat",
}


class Ask:
    """An ASK query: does the pattern have a solution?"""

    def __init__(self, select: a.Select) -> None:
        self.select = select


def parse(text: str) -> tuple[a.Query | Ask, Context]:
    """Parse SPARQL text; return the query and a context of its prefixes (for output).
    Every failure is a one-line QueryError; rdflib prints nothing."""
    if not isinstance(text, str):
        raise QueryError("a SPARQL query is text")
    check_text(text)
    return _parsed(text)


@functools.lru_cache(maxsize=64)
def _parsed(text: str) -> tuple[a.Query | Ask, Context]:
    """`parse`, remembered: rdflib takes milliseconds a query, and a server (the gateway's
    /v0/sparql) is asked the same ones again and again. The results are never changed."""
    _quiet_rdflib()
    from pyparsing import ParseException
    from rdflib.plugins.sparql.algebra import translateQuery
    from rdflib.plugins.sparql.parser import parseQuery

    try:
        tree = parseQuery(text)
        translated = translateQuery(tree)
        prefixes = {str(d.prefix or ""): str(d.iri) for d in tree[0] if d.name == "PrefixDecl"}
    except ParseException as e:
        raise QueryError(f"SPARQL syntax error at line {e.lineno} column {e.col}: {e.msg}") from None
    except RecursionError:
        raise QueryError("SPARQL query nested too deeply") from None
    except (AttributeError, IndexError, KeyError, TypeError):  # inside rdflib: a form it lacks
        raise QueryError("SPARQL form not supported (rdflib cannot translate it)") from None
    except Exception as e:  # rdflib raises plain exceptions for semantic errors
        raise QueryError(f"SPARQL error: {e}") from None
    context = Context(vocab=None, terms=prefixes, prefixes=frozenset(prefixes))
    try:
        return Translator().query(translated.algebra), context
    except QueryError:
        raise
    except RecursionError:
        raise QueryError("SPARQL query nested too deeply") from None
    except (AttributeError, KeyError, IndexError, TypeError, ValueError):
        # rdflib's algebra in a shape this translator does not know: a form it lacks
        raise QueryError("SPARQL form not supported (Mizu cannot translate it)") from None


def _quiet_rdflib() -> None:
    """rdflib logs warnings (with tracebacks) for literals it cannot convert; without a
    handler Python prints them on stderr. They are not Mizu's output: a handler that
    drops them, on rdflib's logger only."""
    logger = logging.getLogger("rdflib")
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())


class Translator:
    def __init__(self) -> None:
        self._blanks: dict[str, a.Var] = {}
        # rdflib translates `GROUP BY (expr)` without AS into Extend(var=None) plus a None
        # key: the expressions are kept here, in order, to stand in for those keys.
        self._unnamed_keys: list[a.Expr] = []

    def query(self, node: Any) -> a.Query | Ask:
        name = node.name
        if getattr(node, "datasetClause", None):
            raise QueryError("SPARQL FROM / FROM NAMED: Mizu's store is a single graph")
        if name == "SelectQuery":
            return self.select(node.p)
        if name == "AskQuery":
            return Ask(self.select(node.p))
        if name == "ConstructQuery":
            select = self.select(node.p)
            if node.template is None:  # CONSTRUCT WHERE { … }: the pattern is the template
                if not isinstance(select.pattern, a.BGP):
                    raise QueryError("CONSTRUCT WHERE takes a basic graph pattern only")
                return a.Construct(select.pattern.triples, select)
            template = tuple(a.TriplePattern(*(self.template_slot(x) for x in t)) for t in node.template)
            return a.Construct(template, select)
        if name == "DescribeQuery":
            resources = tuple(terms.iri(valid_iri(str(v))) for v in node.PV if type(v).__name__ == "URIRef")
            variables = tuple(a.Var(str(v)) for v in node.PV if type(v).__name__ == "Variable")
            where = self.select(node.p) if node.p is not None else None
            return a.Describe(resources, variables, where)
        raise QueryError(f"SPARQL {name} is not supported (queries only, no updates)")

    def select(self, node: Any) -> a.Select:
        """Peel solution modifiers off the top of a SPARQL algebra tree."""
        limit, offset, distinct = None, 0, False
        order: tuple[a.OrderKey, ...] = ()
        projection: tuple[a.Var, ...] | None = None
        while True:
            name = node.name
            if name == "Slice":
                offset, limit = node.start or 0, node.length
            elif name in ("Distinct", "Reduced"):
                distinct = distinct or name == "Distinct"
            elif name == "Project":
                projection = tuple(a.Var(str(v)) for v in node.PV)
            elif name == "OrderBy":
                order = tuple(self.order_key(c) for c in node.expr)
            else:
                break
            node = node.p
        return a.Select(self.pattern(node), projection, distinct, order, limit, offset)

    def order_key(self, condition: Any) -> a.OrderKey:
        if getattr(condition, "name", None) == "OrderCondition":
            return a.OrderKey(self.expr(condition.expr), condition.order == "DESC")
        return a.OrderKey(self.expr(condition))

    # -- patterns ------------------------------------------------------------------------

    def pattern(self, node: Any) -> a.Pattern:
        name = node.name
        if name == "BGP":
            return a.BGP(tuple(a.TriplePattern(*(self.slot(x) for x in t)) for t in node.triples))
        if name == "Join":
            return a.Join(self.pattern(node.p1), self.pattern(node.p2))
        if name == "LeftJoin":
            expr = node.expr
            condition = None if _is_true(expr) else self.expr(expr)
            return a.LeftJoin(self.pattern(node.p1), self.pattern(node.p2), condition)
        if name == "Union":
            return a.Union(self.pattern(node.p1), self.pattern(node.p2))
        if name == "Minus":
            return a.Minus(self.pattern(node.p1), self.pattern(node.p2))
        if name == "Filter":
            return a.Filter(self.expr(node.expr), self.pattern(node.p))
        if name == "Extend":
            inner = self.pattern(node.p)
            if node.var is None:
                self._unnamed_keys.append(self.expr(node.expr))
                return inner
            return a.Extend(inner, a.Var(str(node.var)), self.expr(node.expr))
        if name == "AggregateJoin":
            inner, keys = self.group(node.p)
            aggregates = tuple((a.Var(str(agg.res)), self.aggregate(agg)) for agg in node.A)
            return a.Group(inner, keys, aggregates)
        if name == "Group":  # GROUP BY without aggregates
            inner, keys = self.group(node)
            return a.Group(inner, keys, ())
        if name == "ToMultiSet":
            inner = node.p
            if inner.name == "values":
                return self.values(inner.res)
            return a.SubSelect(self.select(inner))
        if name == "values":
            return self.values(node.res)
        if name in ("Graph", "ServiceGraphPattern"):
            raise QueryError(f"SPARQL {name.upper()} is not supported: Mizu's store is one graph")
        if name in ("Project", "Distinct", "Reduced", "OrderBy", "Slice"):
            return a.SubSelect(self.select(node))
        raise QueryError(f"SPARQL {name} is not supported")

    def group(self, node: Any) -> tuple[a.Pattern, tuple[a.Expr, ...]]:
        inner = self.pattern(node.p)
        keys = tuple(
            self.expr(k) if k is not None else self._unnamed_keys.pop(0) for k in (node.expr or [])
        )
        return inner, keys

    def values(self, rows: list[dict[Any, Any]]) -> a.Values:
        names: list[str] = []
        for row in rows:
            for var in row:
                if str(var) not in names:
                    names.append(str(var))
        table = []
        for row in rows:
            by_name = {str(k): v for k, v in row.items()}
            table.append(tuple(
                None if by_name.get(n) in (None, "UNDEF") else self.term(by_name[n]) for n in names
            ))
        return a.Values(tuple(a.Var(n) for n in names), tuple(table))

    def aggregate(self, node: Any) -> a.Aggregate:
        op = _AGGREGATES.get(node.name)
        if op is None:
            raise QueryError(f"SPARQL aggregate {node.name} is not supported")
        arg = None if node.vars == "*" else self.expr(node.vars)
        separator = getattr(node, "separator", None)
        return a.Aggregate(op, arg, bool(getattr(node, "distinct", None)),
                           " " if separator is None else str(separator))

    # -- terms and expressions -----------------------------------------------------------

    def slot(self, value: Any) -> a.Slot:
        kind = type(value).__name__
        if kind == "Variable":
            return a.Var(str(value))
        if kind == "BNode":  # a blank node in a pattern is a variable nobody projects
            return self._blanks.setdefault(str(value), a.Var(f"_bn{len(self._blanks)}"))
        return self.term(value)

    def template_slot(self, value: Any) -> a.Slot:
        if type(value).__name__ == "BNode":  # fresh in each solution (see engine._fill)
            return self._blanks.setdefault("t" + str(value), a.Var(f"{NODE_PREFIX}t{len(self._blanks)}"))
        return self.slot(value)

    def term(self, value: Any) -> bytes:
        kind = type(value).__name__
        if kind == "URIRef":
            return terms.iri(valid_iri(str(value)))
        if kind == "Literal":
            if value.language:
                return terms.lang_string(str(value), value.language)
            if value.datatype is None:
                return terms.literal(str(value))
            return typed_literal(str(value), str(value.datatype))
        raise QueryError(f"SPARQL term {value!r} is not supported here")

    def expr(self, node: Any) -> a.Expr:
        kind = type(node).__name__
        if kind == "Variable":
            return a.Var(str(node))
        if kind in ("URIRef", "Literal"):
            return a.Const(self.term(node))
        name = getattr(node, "name", None)
        if name == "RelationalExpression":
            left = self.expr(node.expr)
            if node.op in ("IN", "NOT IN"):
                other = node.other if isinstance(node.other, list) else []  # `IN ()`: rdf:nil
                return a.Call("in" if node.op == "IN" else "notin",
                              (left, *(self.expr(x) for x in other)))
            return a.Call(_RELATIONS[node.op], (left, self.expr(node.other)))
        if name in ("ConditionalAndExpression", "ConditionalOrExpression"):
            op = "and" if name == "ConditionalAndExpression" else "or"
            return a.Call(op, (self.expr(node.expr), *(self.expr(x) for x in node.other)))
        if name in ("AdditiveExpression", "MultiplicativeExpression"):
            result = self.expr(node.expr)
            names = {"+": "plus", "-": "minus", "*": "times", "/": "divide"}
            for op, other in zip(node.op or [], node.other or [], strict=True):
                result = a.Call(names[op], (result, self.expr(other)))
            return result
        if name == "UnaryNot":
            return a.Call("not", (self.expr(node.expr),))
        if name == "UnaryMinus":
            return a.Call("minus", (a.Const(terms.literal(0)), self.expr(node.expr)))
        if name == "UnaryPlus":
            return self.expr(node.expr)
        if name in ("Builtin_EXISTS", "Builtin_NOTEXISTS"):
            from rdflib.plugins.sparql.algebra import translateGroupGraphPattern

            graph = node.graph if node.graph.name != "GroupGraphPatternSub" else translateGroupGraphPattern(node.graph)
            return a.Exists(self.pattern(graph), negated=name == "Builtin_NOTEXISTS")
        if name in _BUILTINS:
            op = _BUILTINS[name]
            if op == "regex":
                args = [node.text, node.pattern] + ([node.flags] if node.flags is not None else [])
            elif op == "langmatches":
                args = [node.arg1, node.arg2]
            elif op == "concat":
                args = list(node.arg)
            else:
                args = [node.arg]
            return a.Call(op, tuple(self.expr(x) for x in args))
        if name == "Function":
            return a.Call("iri:" + str(node.iri), tuple(self.expr(x) for x in node.expr or ()))
        raise QueryError(f"SPARQL function {name or node!r} is not supported")


def _is_true(expr: Any) -> bool:
    return expr is None or (getattr(expr, "name", None) == "TrueFilter")
