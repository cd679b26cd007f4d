"""From a query as written (or stored in a message) to JSON rows.

Templates are filled first: `$include` inlined (partial references against the message
holding the query), `$var` replaced by parameters; then json-rql is parsed and evaluated
over one read snapshot of the index.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from mizu_core import terms
from mizu_core.errors import QueryError
from mizu_core.message import codec
from mizu_core.message.templates import expand_includes, fill_vars, resolve_pointer
from mizu_core.query.algebra import Construct, Describe, Query, Select, Slot, Var
from mizu_core.query.context import Context
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
    if not isinstance(query, dict):
        raise QueryError("a query must be a JSON object")
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


def run(query: Any, index: TripleIndex, self_iri: str | None = None,
        message: dict[str, Any] | None = None, nquads: bool = False) -> Iterator[Any]:
    """Evaluate a prepared json-rql query: select rows as they are found; for @construct
    and @describe, one subject object per node (or, with `nquads`, N-Quads lines)."""
    parser = Parser(self_iri, message)
    yield from evaluate(parser.query(query), parser.context, index, nquads)


def run_sparql(text: str, index: TripleIndex, nquads: bool = False) -> Iterator[Any]:
    """Evaluate SPARQL text; ASK yields one row, {"@ask": true|false}."""
    from mizu_core.query import sparql

    parsed, context = sparql.parse(text)
    if isinstance(parsed, sparql.Ask):
        if nquads:
            raise QueryError("N-Quads output needs a CONSTRUCT or DESCRIBE query")
        found = next(iter(Evaluator(index).select(parsed.select)), None) is not None
        yield {"@ask": found}
        return
    yield from evaluate(parsed, context, index, nquads)


def evaluate(
    parsed: Query, context: Context, index: TripleIndex, nquads: bool = False
) -> Iterator[Any]:
    evaluator = Evaluator(index)
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
                yield f"{terms.to_nt(t[0])} {terms.to_nt(t[1])} {terms.to_nt(t[2])} .\n"
        return
    yield from subjects_json(list(triples), context, nested)


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
            if s is not None and p is not None and o is not None and p[:1] == b"I":
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
