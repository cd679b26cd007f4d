"""Query results as JSON (SPEC §4): strings, numbers and booleans stay native; IRIs become
`{"@id": …}`; other literals `{"@value": …, "@type": …}` or `{"@value", "@language"}`."""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote

from mizu_core import terms
from mizu_core.query.context import Context
from mizu_core.terms import Term

_DOUBLE = struct.Struct(">d")
_XSD_SPECIAL = {"inf": "INF", "-inf": "-INF", "nan": "NaN"}  # XSD's spellings


def term_json(term: Term) -> Any:
    kind = term[0]  # the common kinds first, compared as ints (no slicing)
    if kind == 83:  # S
        return term[1:].decode("utf-8")
    if kind == 73:  # I
        return {"@id": term[1:].decode("utf-8")}
    if kind == 105:  # i
        return int(term[1:])
    if kind == 100:  # d
        value = _DOUBLE.unpack_from(term, 1)[0]
        if value - value == 0:  # finite (JSON has no INF or NaN)
            return value
        return {"@value": _XSD_SPECIAL[repr(value)], "@type": terms.XSD_DOUBLE}
    if kind == 98:  # b
        return term == terms.TRUE
    tag = term[:1]
    if tag == b"B":
        return {"@id": "_:" + term[1:].decode("utf-8")}
    if tag == b"L":
        lang, text = term[1:].split(b"\0", 1)
        return {"@value": text.decode("utf-8"), "@language": lang.decode("utf-8")}
    return {"@value": terms.lexical(term), "@type": terms.datatype(term)}


def row_maker(
    names: list[str] | None, decode: Callable[[Any], Term], cache: dict[int, Any], ctx: Context
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """row(solution): a select row as JSON (SPEC §4), projected on `names` (all variables
    when None) and with IRIs relative to the query's @base (if it sets one). Values are an
    evaluator's (term ids, or terms the store lacks). `cache` keeps the JSON of ids; safe
    to share as long as the ids it is keyed by are."""
    get = cache.get

    def value_json(value: Any) -> Any:
        found = get(value)
        if found is None:
            found = term_json(decode(value))
            if type(value) is int:
                if len(cache) >= CACHE_LIMIT:
                    cache.clear()
                cache[value] = found
        if type(found) is dict:  # the caller may change it: a copy of their own
            found = dict(found)
            return compacted(found, ctx) if ctx.base else found
        return found

    if names is None:
        return lambda solution: {f"?{n}": value_json(v) for n, v in solution.items()}
    keys = [(n, f"?{n}") for n in names]
    base = ctx.base

    def row(solution: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for n, k in keys:
            if n in solution:
                value = solution[n]
                found = get(value)  # inline fast paths: a cached value, an IRI with no @base
                if found is None or (type(found) is dict and base):
                    found = value_json(value)
                elif type(found) is dict:
                    found = found.copy()  # the caller may change it: a copy of their own
                out[k] = found
        return out

    return row


CACHE_LIMIT = 1 << 14  # bounded: a long result must stream in little memory


RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"


def compact_iri(iri: str, ctx: Context) -> str:
    """The shortest key the context gives an IRI: a term, vocab-relative, or prefix:name.
    Never a key JSON-LD would read as a keyword: a field named `@id` (predicate
    `https://mizu.stream/@id`) keeps its full IRI, so it cannot pass for a subject's @id."""
    for term, target in ctx.terms.items():
        if target == iri and not term.startswith("@"):
            return term
    if ctx.vocab and iri.startswith(ctx.vocab) and "/" not in iri[len(ctx.vocab):]:
        key = unquote(iri[len(ctx.vocab):])
        if not key.startswith("@") and ":" not in key:
            return key
        return iri
    for prefix in ctx.prefixes:
        target = ctx.terms[prefix]
        if iri.startswith(target) and len(iri) > len(target):
            return f"{prefix}:{iri[len(target):]}"
    return iri


def compact_id(iri: str, ctx: Context) -> str:
    """An @id relative to the context's @base, when it lies under it."""
    if ctx.base and iri.startswith(ctx.base) and len(iri) > len(ctx.base):
        return iri[len(ctx.base):]
    return iri


def compacted(value: Any, ctx: Context) -> Any:
    if isinstance(value, dict) and set(value) == {"@id"}:
        return {"@id": compact_id(value["@id"], ctx)}
    return value


def subjects_json(
    triples: Iterable[tuple[Term, Term, Term]], ctx: Context, nested: set[Term] | None = None
) -> list[dict[str, Any]]:
    """Group triples into one JSON object per subject (`@id` first; sets as arrays;
    rdf:type as `@type`). Subjects in `nested` are written inside the subjects that point
    to them rather than on their own (json-rql's template-shaped results)."""
    subjects: dict[Term, dict[str, dict[Term, None]]] = {}
    keys: dict[Term, str] = {}  # predicate → its key (a few predicates, many triples)
    for s, p, o in triples:
        key = keys.get(p)
        if key is None:
            iri = terms.iri_value(p)
            key = keys[p] = "@type" if iri == RDF_TYPE else compact_iri(iri, ctx)
        subjects.setdefault(s, {}).setdefault(key, {})[o] = None
    embedded = {o for o in nested or () if o in subjects}

    def node(s: Term, seen: frozenset[Term]) -> dict[str, Any]:
        out: dict[str, Any] = {"@id": compact_id(term_json(s)["@id"], ctx)}
        for key in sorted(subjects[s]):
            values: list[Any] = []
            for o in sorted(subjects[s][key]):
                if nested and o in nested and o not in subjects and o[:1] == b"B":
                    continue  # an anonymous template node nothing filled in: left out
                if o in embedded and o not in seen:
                    values.append(node(o, seen | {o}))
                elif key == "@type" and terms.is_iri(o):
                    values.append(compact_iri(terms.iri_value(o), ctx))
                else:
                    values.append(compacted(term_json(o), ctx))
            if values:
                out[key] = values[0] if len(values) == 1 else values
        return out

    top = [s for s in subjects if s not in embedded]
    reached = set(top)
    stack = list(top)
    while stack:  # subjects only reachable through a cycle are written on their own too
        for objs in subjects[stack.pop()].values():
            for o in objs:
                if o in subjects and o not in reached:
                    reached.add(o)
                    stack.append(o)
    top += [s for s in subjects if s not in reached]
    return [node(s, frozenset((s,))) for s in top]
