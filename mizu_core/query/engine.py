"""From a query as written (or stored in a message) to JSON rows.

Templates are filled first: `$include` inlined (partial references against the message
holding the query), `$var` replaced by parameters; then json-rql is parsed and evaluated
over one read snapshot of the index.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from mizu_core.errors import QueryError
from mizu_core.message import codec
from mizu_core.message.templates import expand_includes, fill_vars, resolve_pointer
from mizu_core.query.evaluate import Evaluator
from mizu_core.query.jsonrql import READ_KEYS, Parser
from mizu_core.query.results import row_json
from mizu_core.repo.index import TripleIndex


def prepare(
    query: Any,
    params: dict[str, Any] | None = None,
    resolve_external: Callable[[str], Any] | None = None,
    path: str = "",
) -> Any:
    """The query object to parse: includes expanded, the sub-object at `path`, vars filled."""
    if not isinstance(query, dict):
        raise QueryError("a query must be a JSON object")
    expanded = expand_includes(query, resolve_external)
    if path:
        try:
            expanded = resolve_pointer(expanded, "#/" + path.strip("/"))
        except KeyError:
            raise QueryError(f"no query at '{path}'") from None
    if not isinstance(expanded, dict) or not any(k in expanded for k in READ_KEYS):
        where = f"'{path}'" if path else "the message"
        raise QueryError(f"{where} is not a query (no {', '.join(READ_KEYS)})")
    return codec.to_json(fill_vars(expanded, params or {}))


def run(query: Any, index: TripleIndex, self_iri: str | None = None,
        message: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
    """Evaluate a prepared json-rql query; yield JSON rows as they are found."""
    select = Parser(self_iri, message).query(query)
    for solution in Evaluator(index).select(select):
        yield row_json(solution)
