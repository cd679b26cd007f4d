"""From a message to its triples (SPEC §2).

The root is `https://mizu.stream/v0/view-raw/<cid>`; field `k` is predicate
`https://mizu.stream/<k>`; a nested object is node `<parent>/<k>` (`<parent>/<k>/<i>`
inside an array, `i` its rank in canonical DAG-CBOR order of the set); arrays are sets;
`null` gives nothing; `{"$ref": uri}` and CID links are IRIs; `$prev`, `$include` and
`$schema` strings are IRIs. Values under `$$name` keys are plain data (nothing in them is
read as a pointer). A nested array is flattened into its parent's set. The patterns of a
stored json-rql query (`@where`, `@construct`) are not data and give no triples: otherwise
a stored query would match itself.
"""

from __future__ import annotations

import functools
import itertools
from typing import Any

from mizu_core import terms
from mizu_core.message import codec
from mizu_core.message.cid import CID, DAG_CBOR
from mizu_core.message.templates import pointer_segments
from mizu_core.message.uris import IPFS, VIEW_RAW, is_partial, normalise_iri, segment
from mizu_core.speedups import native
from mizu_core.terms import Term

Triple = tuple[Term, Term, Term]

_IRI_FIELDS = frozenset(("$prev", "$include", "$schema"))
_PATTERN_KEYS = frozenset(("@where", "@construct"))
_SCALARS = frozenset((str, int, float, bool, bytes))  # the types whose values are literals
_predicates: dict[str, tuple[Term, str]] = {}


def _predicate(key: str) -> tuple[Term, str]:
    """The predicate term of `key` and its IRI path segment (cached: keys repeat)."""
    cached = _predicates.get(key)
    if cached is None:
        seg = segment(key)
        cached = (terms.iri("https://mizu.stream/" + seg), seg)
        if len(_predicates) < 50_000:
            _predicates[key] = cached
    return cached


def link_iri(cid: CID) -> str:
    if cid.codec == DAG_CBOR:
        return VIEW_RAW + str(cid.to_v1())
    return IPFS + str(cid.to_v1())


def _set_elements(values: list[Any]) -> list[Any]:
    """Distinct elements of an array in canonical order (nested arrays flattened)."""
    flat: list[Any] = []
    stack = [values]
    while stack:
        for v in stack.pop():
            if type(v) is list:
                stack.append(v)
            elif v is not None:
                flat.append(v)
    if len(flat) < 2:
        return flat
    if all(type(v) is str for v in flat):
        # Same major type: canonical order is by UTF-8 length, then bytes.
        return sorted(set(flat), key=_text_order)
    by_encoding = {codec.encode(v): v for v in flat}
    return [by_encoding[k] for k in sorted(by_encoding)]


def _text_order(text: str) -> tuple[int, bytes]:
    raw = text.encode("utf-8")
    return (len(raw), raw)


def _rank(values: list[Any], element: Any) -> int | None:
    """The rank of `element` in the set `values`: None for a null or an array, no element."""
    encoded = codec.encode(element)
    return next((i for i, e in enumerate(_set_elements(values)) if codec.encode(e) == encoded), None)


def node_path(message: dict[str, Any], ref: str) -> str:
    """The IRI path suffix of the node a partial reference names (`#/tags/1` → `/tags/0`)."""
    out = []
    value: Any = message
    segs = pointer_segments(ref)
    for n, seg in enumerate(segs):
        if type(value) is dict and seg in value:
            out.append(segment(seg))
            value = value[seg]
        elif type(value) is list and seg.isdigit() and int(seg) < len(value) and (
            rank := _rank(value, value[int(seg)])
        ) is not None:
            out.append(str(rank))
            value = value[int(seg)]
        else:  # dangling, or a null or an array (no node): keep the rest as written
            out.extend(segment(s) for s in segs[n:])
            break
    return "".join("/" + s for s in out)


def _resolve(root_iri: str, message: dict[str, Any], uri: str) -> str:
    """The IRI a pointer names: a partial one (`#/…`) within the message at `root_iri`."""
    if is_partial(uri):
        return root_iri + node_path(message, uri)
    return normalise_iri(uri)


def message_triples(cid: CID | str, message: dict[str, Any]) -> list[Triple]:
    """Every triple that `message`, stored as `cid`, contributes to the index, in a stable
    order (so term ids are given the same way on every run). `_speedups.message_triples`
    does the same in C."""
    if native is not None:
        return _native_triples(cid, message, flat=False)
    root_iri = VIEW_RAW + str(cid)
    resolve = functools.partial(_resolve, root_iri, message)
    out: dict[Triple, None] = {}
    literal = terms.literal
    iri = terms.iri

    def obj(value: Any, node_iri: str, key: str, plain: bool) -> Term:
        t = type(value)
        if t is dict:
            if not plain and len(value) == 1 and "$ref" in value and type(value["$ref"]) is str:
                return iri(resolve(value["$ref"]))
            describe(node_iri, value, plain)
            return iri(node_iri)
        if t is CID:
            return iri(link_iri(value))
        if not plain and t is str and key in _IRI_FIELDS:
            return iri(resolve(value))
        return literal(value)

    def describe(subject_iri: str, node: dict[str, Any], plain: bool) -> None:
        s = iri(subject_iri)
        for key, value in node.items():
            if value is None or key in _PATTERN_KEYS:
                continue
            p, seg = _predicate(key)
            t = type(value)
            if t in _SCALARS and (t is not str or plain or key not in _IRI_FIELDS):
                out[(s, p, literal(value))] = None  # most values: no node, no IRI
                continue
            field_plain = plain or key.startswith("$$")
            base = subject_iri + "/" + seg
            if t is list:
                for i, element in enumerate(_set_elements(value)):
                    out[(s, p, obj(element, f"{base}/{i}", key, field_plain))] = None
            else:
                out[(s, p, obj(value, base, key, field_plain))] = None

    describe(root_iri, message, False)
    return list(out)


def triple_terms(cid: CID | str, message: dict[str, Any]) -> list[Term]:
    """The terms of `message_triples`, each triple's in turn (s, p, o, s, p, o, …): the
    form the index takes, with no tuple per triple to pickle, unpickle and free."""
    if native is not None:
        return _native_triples(cid, message, flat=True)
    return list(itertools.chain.from_iterable(message_triples(cid, message)))


def _native_triples(cid: CID | str, message: dict[str, Any], flat: bool) -> list[Any]:
    root_iri = VIEW_RAW + str(cid)
    resolve = functools.partial(_resolve, root_iri, message)
    assert native is not None
    return native.message_triples(  # type: ignore[no-any-return]
        root_iri, message, _predicates, _predicate, resolve, link_iri, _set_elements, CID, flat
    )
