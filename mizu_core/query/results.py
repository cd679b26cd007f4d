"""Query results as JSON (SPEC §4): strings, numbers and booleans stay native; IRIs become
`{"@id": …}`; other literals `{"@value": …, "@type": …}` or `{"@value", "@language"}`."""

from __future__ import annotations

from typing import Any

from mizu_core import terms
from mizu_core.terms import Term


def term_json(term: Term) -> Any:
    kind = term[:1]
    if kind in (b"S", b"i", b"d", b"b"):
        return terms.python_value(term)
    if kind == b"I":
        return {"@id": terms.iri_value(term)}
    if kind == b"B":
        return {"@id": "_:" + term[1:].decode("utf-8")}
    if kind == b"L":
        lang, text = term[1:].split(b"\0", 1)
        return {"@value": text.decode("utf-8"), "@language": lang.decode("utf-8")}
    return {"@value": terms.lexical(term), "@type": terms.datatype(term)}


def row_json(solution: dict[str, Term]) -> dict[str, Any]:
    return {"?" + name: term_json(term) for name, term in solution.items()}
