"""Query results as JSON (SPEC §4): strings, numbers and booleans stay native; IRIs become
`{"@id": …}`; other literals `{"@value": …, "@type": …}` or `{"@value", "@language"}`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote

from mizu_core import terms
from mizu_core.query.context import Context
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


def compact_iri(iri: str, ctx: Context) -> str:
    """The shortest key the context gives an IRI: a term, vocab-relative, or prefix:name."""
    for term, target in ctx.terms.items():
        if target == iri:
            return term
    if ctx.vocab and iri.startswith(ctx.vocab) and "/" not in iri[len(ctx.vocab):]:
        return unquote(iri[len(ctx.vocab):])
    for prefix, target in ctx.terms.items():
        if iri.startswith(target) and len(iri) > len(target):
            return f"{prefix}:{iri[len(target):]}"
    return iri


def subjects_json(triples: Iterable[tuple[Term, Term, Term]], ctx: Context) -> list[dict[str, Any]]:
    """Group triples into one JSON object per subject (`@id` first; sets as arrays)."""
    subjects: dict[Term, dict[str, dict[Term, None]]] = {}
    for s, p, o in triples:
        subjects.setdefault(s, {}).setdefault(compact_iri(terms.iri_value(p), ctx), {})[o] = None
    out = []
    for s, properties in subjects.items():
        node: dict[str, Any] = {"@id": term_json(s)["@id"]}
        for key in sorted(properties):
            values = [term_json(o) for o in sorted(properties[key])]
            node[key] = values[0] if len(values) == 1 else values
        out.append(node)
    return out
