"""Mizu's offline @context processing gives the same expansion as JSON-LD's (pyld).

SPEC §4 asks for JSON-LD's rules "through pyld or an equivalent that gives the same
expansion": Mizu has its own small implementation (no network, no 0.3 s import), so this
test holds it to pyld on the constructs queries use. One documented difference: Mizu
percent-encodes vocabulary-relative keys the way message fields are (`a b` → `a%20b`),
so those keys are not drawn here.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mizu_core.query.context import Context

jsonld = pytest.importorskip("pyld.jsonld")

names = st.from_regex(r"[a-z][a-z0-9]{0,6}", fullmatch=True)
iris = st.sampled_from(["http://a.example/", "http://b.example/ns#", "https://mizu.stream/", "urn:x:"])


@st.composite
def contexts(draw: Any) -> dict[str, Any]:
    ctx: dict[str, Any] = {}
    if draw(st.booleans()):
        ctx["@vocab"] = draw(iris)
    if draw(st.booleans()):
        ctx["@base"] = draw(st.sampled_from(["http://base.example/", "http://base.example/dir/"]))
    for prefix in draw(st.lists(names, max_size=3, unique=True)):
        ctx[prefix] = draw(iris)
    for term in draw(st.lists(names, max_size=3, unique=True)):
        if term in ctx:
            continue
        prefixes = [k for k in ctx if not k.startswith("@")]
        target = draw(st.one_of(iris.map(lambda i, t=term: i + t), *(
            [st.sampled_from(prefixes).map(lambda p, t=term: f"{p}:{t}")] if prefixes else [])))
        ctx[term] = {"@id": target, "@type": "@id"} if draw(st.booleans()) else target
    return ctx


def pyld_expand(ctx: dict[str, Any], key: str, value: Any) -> tuple[str, Any] | None:
    doc = {"@context": ctx, "@id": "http://s.example/s", key: value}
    expanded = jsonld.expand(doc, {"documentLoader": _no_remote})
    if not expanded or len(expanded[0]) < 2:
        return None  # JSON-LD drops keys it cannot expand
    (iri, values), = ((k, v) for k, v in expanded[0].items() if k != "@id")
    return iri, values[0]


def _no_remote(url: str, options: Any = None) -> Any:
    raise AssertionError(f"pyld tried to fetch {url}")


@settings(max_examples=200, deadline=None)
@given(contexts(), st.data())
def test_keys_and_ids_expand_as_in_json_ld(ctx: dict[str, Any], data: st.DataObject) -> None:
    ours = Context().extend(ctx, "@context")
    candidates = [k for k in ctx if not k.startswith("@")] + ["name"]
    prefixes = [k for k, v in ctx.items() if isinstance(v, str) and not k.startswith("@")]
    candidates += [f"{p}:local" for p in prefixes] + ["http://abs.example/p"]
    key = data.draw(st.sampled_from(candidates))
    expected = pyld_expand(ctx, key, "value")
    if expected is None:
        return  # not a term JSON-LD knows either (e.g. no @vocab): nothing to compare
    iri, value = expected
    assert ours.expand_key(key) == iri, (ctx, key)
    coerced = "@id" in value
    assert (key in ours.iri_valued) == coerced, (ctx, key)
    if coerced and "@base" in ctx:
        assert ours.expand_id("value") == value["@id"]
