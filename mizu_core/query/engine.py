"""From a query as written (or stored in a message) to JSON rows.

Templates are filled first: `$include` inlined (partial references against the message
holding the query), `$var` replaced by parameters; then json-rql is parsed and evaluated
over one read snapshot of the index.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from mizu_core import terms
from mizu_core.errors import QueryError
from mizu_core.message import codec
from mizu_core.message.templates import expand_includes, fill_vars, resolve_pointer
from mizu_core.query.algebra import Construct, Describe, Query, Select, Slot, Var
from mizu_core.query.checks import check_json, check_query
from mizu_core.query.context import Context
from mizu_core.query.deadline import Deadline
from mizu_core.query.evaluate import Evaluator
from mizu_core.query.jsonrql import NODE_PREFIX, READ_KEYS, Parser
from mizu_core.query.results import row_maker, subjects_json
from mizu_core.repo.index import Triple, TripleIndex


def prepare(
    query: Any,
    params: dict[str, Any] | None = None,
    resolve_external: Callable[[str], Any] | None = None,
    path: str = "",
    stored: bool = False,
) -> Any:
    """The query object to parse: includes expanded, the sub-object at `path`, vars filled.
    `stored` says the query came from a message (for error messages)."""
    with _query_errors():
        return _prepare(query, params, resolve_external, path, stored)


def _prepare(
    query: Any, params: dict[str, Any] | None, resolve_external: Callable[[str], Any] | None,
    path: str, stored: bool,
) -> Any:
    if not isinstance(query, dict):
        raise QueryError("a query must be a JSON object")
    check_json(query, data=True)  # before the templates' recursive walks
    _check_templates(query)
    expanded = expand_includes(query, resolve_external)
    if path:
        try:
            expanded = resolve_pointer(expanded, "#/" + path.strip("/"))
        except KeyError:
            raise QueryError(f"no query at '{path}'") from None
    if not isinstance(expanded, dict) or not any(k in expanded for k in READ_KEYS):
        where = f"'{path}'" if path else "the message" if stored else "the query"
        raise QueryError(f"{where} is not a query (no {', '.join(READ_KEYS)})")
    return codec.to_json(fill_vars(expanded, params or {}))


def _check_templates(query: Any) -> None:
    """`$include` names a URI and `$var` a parameter: strings (iteratively: any depth)."""
    stack = [query]
    while stack:
        value = stack.pop()
        if type(value) is list:
            stack.extend(value)
        elif type(value) is dict:
            for key, item in value.items():
                if key in ("$include", "$var") and not isinstance(item, str):
                    raise QueryError(f"{key} takes a string, not {_json_type(item)}")
                if not key.startswith("$$"):
                    stack.append(item)


def _json_type(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(value), "a number")


def run(query: Any, index: TripleIndex, self_iri: str | None = None,
        message: dict[str, Any] | None = None, nquads: bool = False,
        deadline: Deadline | None = None) -> Iterator[Any]:
    """Evaluate a prepared json-rql query: select rows as they are found; for @construct
    and @describe, one subject object per node (or, with `nquads`, N-Quads lines).
    `deadline` bounds the work (QueryTimeout)."""
    with _query_errors():
        parser = Parser(self_iri, message)
        parsed = parser.query(query)
    yield from evaluate(parsed, parser.context, index, nquads, deadline)


def run_sparql(text: str, index: TripleIndex, nquads: bool = False,
               deadline: Deadline | None = None) -> Iterator[Any]:
    """Evaluate SPARQL text; ASK yields one row, {"@ask": true|false}."""
    from mizu_core.query import sparql

    with _query_errors():
        parsed, context = sparql.parse(text)
    if isinstance(parsed, sparql.Ask):
        if nquads:
            raise QueryError("N-Quads output needs a CONSTRUCT or DESCRIBE query")
        with _query_errors():
            check_query(parsed.select)
            found = next(iter(Evaluator(index, deadline).select(parsed.select)), None) is not None
        yield {"@ask": found}
        return
    yield from evaluate(parsed, context, index, nquads, deadline)


def sparql_form(text: str) -> tuple[str, list[str] | None]:
    """What a SPARQL query answers, for a writer that needs it before the rows: ("select",
    its variables without "?"), ("ask", None) or ("graph", None) (CONSTRUCT, DESCRIBE)."""
    from mizu_core.query import sparql

    with _query_errors():
        parsed, _ = sparql.parse(text)
    if isinstance(parsed, sparql.Ask):
        return "ask", None
    if isinstance(parsed, Select):
        return "select", None if parsed.projection is None else [v.name for v in parsed.projection]
    return "graph", None


@contextmanager
def _query_errors() -> Iterator[None]:
    """What escapes the engine is a one-line QueryError about the query: the stack a
    query's nesting can still exhaust (its depth is bounded, the caller's stack is not
    known) and the memory it can take become one; a message never spans lines."""
    try:
        yield
    except QueryError as e:
        text = str(e)
        if "\n" in text or "\r" in text or len(text) > MAX_MESSAGE:
            raise type(e)(one_line(text), e.hint) from None
        raise
    except RecursionError:
        raise QueryError("the query is nested too deeply to evaluate") from None
    except MemoryError:
        raise QueryError("the query needs more memory than there is") from None


MAX_MESSAGE = 400


def one_line(text: str) -> str:
    """`text` on one line, control characters escaped, cut in the middle when long."""
    flat = "".join(c if c >= " " and c != "\x7f" else repr(c)[1:-1] for c in text)
    if len(flat) > MAX_MESSAGE:
        flat = flat[: MAX_MESSAGE // 2] + " … " + flat[-MAX_MESSAGE // 2:]
    return flat


def evaluate(
    parsed: Query, context: Context, index: TripleIndex, nquads: bool = False,
    deadline: Deadline | None = None,
) -> Iterator[Any]:
    """The rows of a parsed query (checked first: see checks.py). The time the caller
    holds a row does not count against `deadline` (see Deadline.rows)."""
    with _query_errors():
        check_query(parsed)
        rows = _evaluate(parsed, context, index, nquads, deadline)
        yield from rows if deadline is None else deadline.rows(rows)


def _evaluate(
    parsed: Query, context: Context, index: TripleIndex, nquads: bool = False,
    deadline: Deadline | None = None,
) -> Iterator[Any]:
    evaluator = Evaluator(index, deadline)
    if isinstance(parsed, Select):
        if nquads:
            raise QueryError("N-Quads output needs @construct or @describe (a graph, not rows)")
        names = None if parsed.projection is None else [v.name for v in parsed.projection]
        row = row_maker(names, evaluator.decode, index.dictionary.derived, context)
        yield from map(row, evaluator.solutions(parsed, project=False))
        return
    nested: set[bytes] = set()
    if isinstance(parsed, Construct):
        triples: Iterator[Triple] = construct_triples(parsed, evaluator, nested)
    else:
        triples = describe_triples(parsed, evaluator, index)
    if nquads:
        seen: set[Triple] = set()
        for t in triples:  # a graph is a set: each triple once, streamed
            if t not in seen:
                seen.add(t)
                yield f"{nt_term(t[0])} {nt_term(t[1])} {nt_term(t[2])} .\n"
        return
    yield from subjects_json(list(triples), context, nested)


_NOT_IN_IRI = re.compile(r'[\x00-\x20<>"{}|^`\\\x7f]')
_BLANK_LABEL = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_-])?\Z")


def nt_term(term: bytes) -> str:
    """A term as N-Quads writes it, valid whatever the term holds: characters an IRI
    cannot hold percent-encoded, blank node labels outside the safe set in hex, doubles
    that are not finite in XSD's spelling."""
    kind = term[:1]
    if kind == b"I":
        iri = terms.iri_value(term)
        if _NOT_IN_IRI.search(iri):
            iri = _NOT_IN_IRI.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), iri)
        return f"<{iri}>"
    if kind == b"B":
        label = term[1:].decode("utf-8")
        return "_:" + (label if _BLANK_LABEL.match(label) else "x" + term[1:].hex())
    if kind == b"d":
        text = terms.lexical(term)
        if text in ("inf", "-inf", "nan"):
            return f'"{ {"inf": "INF", "-inf": "-INF", "nan": "NaN"}[text]}"^^<{terms.XSD_DOUBLE}>'
    return terms.to_nt(term)


def _filler(slot: Slot, shaped: bool) -> Callable[[dict[str, bytes], int], bytes | None]:
    """A template slot's term in solution number n. Anonymous nodes become blank nodes:
    fresh in each solution (SPARQL), or, for a shaped template, one node for the whole query
    whatever the pattern bound them to (json-rql: "a template subject without @id is one
    subject"). None: an unbound value leaves its triple out."""
    if not isinstance(slot, Var):
        return lambda solution, n: slot
    name = slot.name
    if not name.startswith(NODE_PREFIX):
        return lambda solution, n: solution.get(name)
    if shaped:
        node = terms.blank(f"b{name[2:]}")
        return lambda solution, n: node
    return lambda solution, n: solution.get(name) or terms.blank(f"b{n}_{name[2:]}")


def construct_triples(
    query: Construct, evaluator: Evaluator, nested: set[bytes] | None = None
) -> Iterator[Triple]:
    """The template's triples in every solution. For a shaped (json-rql) template, the
    nodes filling a nested template subject are added to `nested`, to be embedded."""
    template_subjects = {t.s for t in query.template} if query.shaped else set()
    fills = [(_filler(t.s, query.shaped), _filler(t.p, query.shaped), _filler(t.o, query.shaped),
              nested is not None and t.o in template_subjects) for t in query.template]
    for n, solution in enumerate(evaluator.select(query.select, hidden=True)):
        for fill_s, fill_p, fill_o, nests in fills:
            s, p, o = fill_s(solution, n), fill_p(solution, n), fill_o(solution, n)
            # A literal subject or a non-IRI predicate is no RDF triple: left out (SPARQL).
            if (s is not None and p is not None and o is not None and p[:1] == b"I"
                    and s[:1] in b"IB"):
                if nests:
                    nested.add(o)  # type: ignore[union-attr]
                yield s, p, o


def describe_triples(query: Describe, evaluator: Evaluator, index: TripleIndex) -> Iterator[Triple]:
    resources: dict[bytes, None] = dict.fromkeys(query.resources)
    if query.select is not None:
        for solution in evaluator.select(query.select):
            for var in query.variables:
                if var.name in solution:
                    resources[solution[var.name]] = None
    for resource in resources:
        yield from index.match(resource)
