"""json-rql over the index: the SPEC §4 tutorial and every construct the parser accepts."""

from __future__ import annotations

from typing import Any

import pytest

from mizu_core import Repository
from mizu_core.errors import QueryError, UsageError
from mizu_core.message.keys import PrivateKey
from tests.conftest import SPEC_VECTORS, rsa_vector


@pytest.fixture
def poems(repo: Repository) -> Repository:
    repo.publish([m for m, _ in SPEC_VECTORS[1:]], sign=False)
    return repo


def rows(repo: Repository, query: dict[str, Any], **kw: Any) -> list[dict[str, Any]]:
    return list(repo.query(query, **kw))


def bag(result: list[dict[str, Any]]) -> list[str]:
    return sorted(repr(sorted(r.items())) for r in result)


def test_tutorial_query(poems: Repository) -> None:
    q = {"@select": "?content", "@where": {"author": "solipsis", "content": "?content"}}
    assert bag(rows(poems, q)) == bag([{"?content": "roses are red"}, {"?content": "violets are blue"}])


def test_signed_key_query_returns_only_the_signed_message(poems: Repository) -> None:
    poems.publish([rsa_vector()], sign=False)
    key = rsa_vector()["$signatures"][0]["key"]
    q = {"@select": "?content", "@where": {"content": "?content", "$$signatures": {"key": key}}}
    assert rows(poems, q) == [{"?content": "roses are red"}]


def test_variables_everywhere_and_iris(poems: Repository) -> None:
    result = rows(poems, {"@select": ["?m", "?p"], "@where": {"@id": "?m", "?p": "grass is green"}})
    assert len(result) == 1 and result[0]["?p"] == {"@id": "https://mizu.stream/content"}
    assert result[0]["?m"]["@id"] == f"https://mizu.stream/v0/view-raw/{SPEC_VECTORS[3][1]}"
    by_id = {"@select": "?a", "@where": {"@id": result[0]["?m"]["@id"], "author": "?a"}}
    assert rows(poems, by_id) == [{"?a": "shakespeare"}]


def test_filters_inline_and_explicit(poems: Repository) -> None:
    poems.publish([{"n": i, "name": f"x{i}"} for i in range(10)], sign=False)
    gt = {"@select": "?v", "@where": {"n": {"@id": "?v", "@gt": 6}}}
    assert sorted(r["?v"] for r in rows(poems, gt)) == [7, 8, 9]
    anonymous = {"@select": "?name", "@where": {"name": "?name", "n": {"@lte": 1}}}
    assert sorted(r["?name"] for r in rows(poems, anonymous)) == ["x0", "x1"]
    explicit = {"@select": "?v", "@where": {"@graph": {"n": "?v"}, "@filter": [
        {"@gte": ["?v", 2]}, {"@lt": ["?v", {"@plus": [2, 2]}]}, {"@notin": ["?v", 3]}]}}
    assert sorted(r["?v"] for r in rows(poems, explicit)) == [2]
    regex = {"@select": "?c", "@where": {"content": {"@id": "?c", "@regex": "^(roses|grass)"}}}
    assert sorted(r["?c"] for r in rows(poems, regex)) == ["grass is green", "roses are red"]
    in_list = {"@select": "?a", "@where": {"author": {"@id": "?a", "@in": ["shakespeare", "nobody"]}}}
    assert rows(poems, in_list) == [{"?a": "shakespeare"}]


def test_optional_union_not_values_bind(poems: Repository) -> None:
    poems.publish([{"author": "solipsis", "mood": "sad"}], sign=False)
    optional = {"@select": ["?c", "?mood"], "@where": {
        "@graph": {"@id": "?m", "author": "solipsis", "content": "?c"},
        "@optional": {"@id": "?x", "author": "solipsis", "mood": "?mood"}}}
    assert all(r["?mood"] == "sad" for r in rows(poems, optional))
    union = {"@select": "?c", "@where": {"@union": [
        {"author": "shakespeare", "content": "?c"}, {"content": {"@id": "?c", "@regex": "violets"}}]}}
    assert sorted(r["?c"] for r in rows(poems, union)) == ["grass is green", "violets are blue"]
    negation = {"@select": "?c", "@where": {"@graph": {"@id": "?m", "content": "?c"},
                                            "@not": {"@id": "?m", "author": "solipsis"}}}
    assert rows(poems, negation) == [{"?c": "grass is green"}]
    # SPEC §4's form: `{"@not": pattern}` as an element of the @where array.
    element = {"@select": "?c", "@where": [{"@id": "?m", "content": "?c"},
                                           {"@not": {"@id": "?m", "author": "solipsis"}}]}
    assert rows(poems, element) == [{"?c": "grass is green"}]
    values = {"@select": ["?a", "?c"], "@where": {"@graph": {"author": "?a", "content": "?c"},
                                                  "@values": [{"?a": "shakespeare"}]}}
    assert rows(poems, values) == [{"?a": "shakespeare", "?c": "grass is green"}]
    bind = {"@select": "?loud", "@where": {"@graph": {"author": "shakespeare", "content": "?c"},
                                           "@bind": {"?loud": {"@concat": ["?c", "!"]}}}}
    assert rows(poems, bind) == [{"?loud": "grass is green!"}]


def test_modifiers(poems: Repository) -> None:
    base = {"@where": {"author": "?a", "content": "?c"}}
    ordered = rows(poems, {"@select": "?c", **base, "@orderBy": "?c"})
    assert [r["?c"] for r in ordered] == ["grass is green", "roses are red", "violets are blue"]
    desc = rows(poems, {"@select": "?c", **base, "@orderBy": {"@desc": "?c"}, "@limit": 1, "@offset": 1})
    assert desc == [{"?c": "roses are red"}]
    assert len(rows(poems, {"@distinct": "?a", **base})) == 2
    assert len(rows(poems, {"@select": "*", **base})[0]) == 2  # anonymous subjects are hidden


def test_context_prefixes_and_coercion(repo: Repository) -> None:
    other = "https://mizu.stream/v0/view-raw/bafyreihedihs5xnwh52scar3h2irbzvb5cqjjsf4axjhcbntqowjlhthya"
    repo.publish([{"name": "a", "knows": {"$ref": other}}], sign=False)
    q = {"@context": {"m": "https://mizu.stream/", "knows": {"@id": "m:knows", "@type": "@id"}},
         "@select": "?n", "@where": {"m:name": "?n", "knows": other}}
    assert rows(repo, q) == [{"?n": "a"}]
    ref = {"@select": "?n", "@where": {"name": "?n", "knows": {"$ref": other.replace("v0/view-raw", "message")}}}
    assert rows(repo, ref) == [{"?n": "a"}]


def test_streaming_stops_at_the_limit(repo: Repository) -> None:
    repo.publish([{"i": i} for i in range(2000)], sign=False)
    stream = repo.query({"@select": "?i", "@where": {"i": "?i"}, "@limit": 3})
    assert len(list(stream)) == 3


def test_templates(repo: Repository) -> None:
    key = PrivateKey.generate()
    repo.publish([{"user_name": "ann", "post": "p1"}, {"user_name": "bob", "post": "p2"}], sign=False)
    stored = repo.publish([{
        "fragment": {"post": "?post"},
        "by_user": {"@select": "?post", "@where": {"$include": "#/fragment", "user_name": {"$var": "user_name"}}},
    }], signer=key).cids[0]
    assert rows(repo, None, cid=stored, path="by_user", params={"user_name": "bob"}) == [{"?post": "p2"}]
    with pytest.raises(UsageError, match="missing parameter 'user_name'"):
        rows(repo, None, cid=stored, path="by_user")
    with pytest.raises(QueryError, match="no query at 'nope'"):
        rows(repo, None, cid=stored, path="nope")


def test_aggregates_group_by_having(poems: Repository) -> None:
    poems.publish([{"author": "solipsis", "likes": 3}, {"author": "solipsis", "likes": 4},
                   {"author": "shakespeare", "likes": 10}], sign=False)
    counts = {"@select": ["?a", {"?n": {"@count": "?c"}}],
              "@where": {"author": "?a", "content": "?c"}, "@groupBy": "?a", "@orderBy": "?a"}
    assert rows(poems, counts) == [{"?a": "shakespeare", "?n": 1}, {"?a": "solipsis", "?n": 2}]
    sums = {"@select": ["?a", {"?total": {"@sum": "?l"}}, {"?avg": {"@avg": "?l"}}],
            "@where": {"author": "?a", "likes": "?l"}, "@groupBy": "?a",
            "@having": {"@gt": [{"@sum": "?l"}, 5]}, "@orderBy": {"@desc": {"@sum": "?l"}}}
    assert rows(poems, sums) == [{"?a": "shakespeare", "?total": 10, "?avg": 10.0},
                                 {"?a": "solipsis", "?total": 7, "?avg": 3.5}]
    star = {"@select": {"?n": {"@count": "*"}}, "@where": {"author": "?a"}}
    assert rows(poems, star) == [{"?n": 6}]
    empty = {"@select": {"?n": {"@count": "*"}}, "@where": {"nobody": "?x"}}
    assert rows(poems, empty) == [{"?n": 0}]
    distinct = {"@select": {"?n": {"@count": "?a", "@distinct": True}}, "@where": {"author": "?a"}}
    assert rows(poems, distinct) == [{"?n": 2}]
    minmax = {"@select": [{"?lo": {"@min": "?l"}}, {"?hi": {"@max": "?l"}},
                          {"?all": {"@groupConcat": "?l", "@separator": ","}}],
              "@where": {"likes": "?l"}}
    result = rows(poems, minmax)[0]
    assert (result["?lo"], result["?hi"]) == (3, 10) and sorted(result["?all"].split(",")) == ["10", "3", "4"]


def test_sub_query(poems: Repository) -> None:
    q = {"@select": ["?a", "?first"], "@where": [
        {"@select": ["?a", {"?first": {"@min": "?c"}}], "@where": {"author": "?a", "content": "?c"},
         "@groupBy": "?a"},
        {"author": "?a", "content": "?first"}]}
    assert bag(rows(poems, q)) == bag([{"?a": "solipsis", "?first": "roses are red"},
                                        {"?a": "shakespeare", "?first": "grass is green"}])


def iri_of(repo: Repository, vector: int) -> str:
    return f"https://mizu.stream/v0/view-raw/{SPEC_VECTORS[vector][1]}"


def test_construct_and_describe(poems: Repository) -> None:
    construct = {"@construct": {"@id": "?m", "poet": "?a"}, "@where": {"@id": "?m", "author": "?a"}}
    shaped = rows(poems, construct)
    assert sorted(s["poet"] for s in shaped) == ["shakespeare", "solipsis", "solipsis"]
    assert all(s["@id"].startswith("https://mizu.stream/v0/view-raw/") for s in shaped)
    # An anonymous template node is one node for all solutions; nested ones are embedded.
    anonymous = {"@construct": {"poem": {"by": "?a"}}, "@where": {"author": "?a"}}
    [shaped_one] = rows(poems, anonymous)
    assert sorted(shaped_one["poem"]["by"]) == ["shakespeare", "solipsis"]
    no_where = {"@construct": {"@id": iri_of(poems, 3), "author": "?", "mood": "?"}}
    assert rows(poems, no_where) == [{"@id": iri_of(poems, 3), "author": "shakespeare"}]
    iri = f"https://mizu.stream/v0/view-raw/{SPEC_VECTORS[3][1]}"
    assert rows(poems, {"@describe": iri}) == [
        {"@id": iri, "author": "shakespeare", "content": "grass is green"}]
    described = rows(poems, {"@describe": "?m", "@where": {"@id": "?m", "author": "solipsis"}})
    assert sorted(d["content"] for d in described) == ["roses are red", "violets are blue"]


def test_every_reference_case_parses() -> None:
    import json

    from mizu_core.query.jsonrql import parse
    from tests.conftest import DATA

    data = DATA / "jsonrql" / "json-rql"
    cases = [p for p in sorted(data.glob("*.json")) if p.name != "todo.json"]
    assert len(cases) == 46
    for case in cases:
        parse(json.loads(case.read_text("utf-8")))


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ({"@select": "?x", "@where": {"@foo": 1}}, r"@where\.@foo: unknown keyword"),
        ({"@select": "?x", "@where": [{"a": 1}, {"@graph": {"a": "?x"}, "@filter": {"@nope": 1}}]},
         r"@where\[1\]\.@filter\.@nope: unknown operator"),
        ({"@select": "x", "@where": {"a": "?x"}}, r"@select: 'x' is not a variable"),
        ({"@select": ["?a", 3], "@where": {"a": "?a"}}, r"@select\[1\]: '3' is not a variable"),
        ({"@select": "?x"}, "needs @where"),
        ({"@select": "?x", "@where": {"a": "?x"}, "@bogus": 1}, "@bogus: unknown keyword"),
        ({"@context": "https://example.org/ctx.jsonld", "@select": "?x", "@where": {"a": "?x"}}, "remote context"),
        ({"@select": "?x", "@where": {"a": "?x"}, "@limit": -1}, "@limit: must be a non-negative"),
        ({"@select": "?x", "@where": {"a": {"$ref": "#/b"}}}, "partial \\$ref"),
        ({"@select": "?x", "@where": {"a": {"@value": "?x"}}}, r"@where\.a\.@value: a variable here"),
        ({"@select": "?x", "@where": {"a": "?x"}, "@limit": "?n"}, "@limit: must be a non-negative"),
        ({"@select": "?x", "@where": {"@id": 5, "a": "?x"}}, r"@where\.@id: must be an IRI"),
        ({"@select": "?x", "@where": {"@graph": {"a": "?x"}, "@union": {"b": 1}}}, r"@union: must be a non-empty array"),
    ],
)
def test_bad_queries_name_the_place(repo: Repository, query: dict[str, Any], error: str) -> None:
    with pytest.raises(QueryError, match=error):
        rows(repo, query)


def test_a_large_result_streams_in_bounded_memory(tmp_path: Any) -> None:
    import tracemalloc

    from mizu_core import terms
    from mizu_core.repo.index import IndexWriter, TermDictionary

    repo = Repository.init(tmp_path)
    predicate = terms.iri("https://mizu.stream/v")
    with repo.store.writer() as txn:
        writer = IndexWriter(txn, TermDictionary(txn))
        writer.add((terms.iri(f"https://example.org/s{i}"), predicate, terms.literal(i)) for i in range(100_000))
        writer.flush()
    rows_seen = 0
    tracemalloc.start()
    for row in repo.query({"@select": ["?s", "?v"], "@where": {"@id": "?s", "v": "?v"}}):
        rows_seen += 1
        assert row["?v"] >= 0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    repo.close()
    assert rows_seen == 100_000
    # Held at once, 100,000 rows take about 66 MB; streaming keeps a handful, beside the
    # bounded term and JSON caches (65,536 and 16,384 entries: about 9 MB together).
    assert peak < 16 << 20, f"peak {peak / 1e6:.1f} MB"


# -- the evaluator's fast paths (ids for terms, short scans, compiled filters) -------------


def test_many_values_per_property_combine_and_stream(repo: Repository) -> None:
    # 150 tags (beyond one short scan, so the rest streams) times 3 colours, one subject.
    tags, colours = [f"t{i}" for i in range(150)], ["red", "green", "blue"]
    repo.publish([{"name": "box", "tag": tags, "colour": colours}], sign=False)
    star = {"@select": ["?t", "?c"], "@where": {"name": "box", "tag": "?t", "colour": "?c"}}
    found = rows(repo, star)
    assert sorted((r["?t"], r["?c"]) for r in found) == sorted((t, c) for t in tags for c in colours)
    assert len(rows(repo, {"@select": "?t", "@where": {"name": "box", "tag": "?t"}})) == 150


def test_numeric_filters_over_mixed_values(repo: Repository) -> None:
    repo.publish([{"v": v} for v in (1, 7, 7.5, 12, "10", "a", True)], sign=False)
    def values(filter_: dict[str, Any]) -> list[Any]:
        q = {"@select": "?v", "@where": {"@graph": {"v": "?v"}, "@filter": filter_}}
        return sorted(rows(repo, q), key=repr)
    # Strings and booleans do not compare with numbers: the filter is false for them.
    assert values({"@and": [{"@gt": ["?v", 5]}, {"@lte": [10, "?v"]}]}) == [{"?v": 12}]
    assert values({"@gt": [8, "?v"]}) == sorted([{"?v": 1}, {"?v": 7}, {"?v": 7.5}], key=repr)
    assert values({"@eq": ["?v", 7.0]}) == [{"?v": 7}]
    assert values({"@gt": ["?v", "9"]}) == [{"?v": "a"}]  # strings compare as strings


def test_bound_values_join_whatever_their_origin(repo: Repository) -> None:
    repo.publish([{"author": "ann", "n": 1}, {"author": "bob", "n": 2}], sign=False)
    bind_then_match = (
        'SELECT ?n WHERE { BIND("ann" AS ?a) ?m <https://mizu.stream/author> ?a ; '
        "<https://mizu.stream/n> ?n }"
    )
    assert list(repo.query(bind_then_match, sparql=True)) == [{"?n": 1}]
    unknown = 'SELECT ?m WHERE { BIND("nobody" AS ?a) ?m <https://mizu.stream/author> ?a }'
    assert list(repo.query(unknown, sparql=True)) == []
    grouped = ("SELECT ?a (COUNT(?m) AS ?c) WHERE { ?m <https://mizu.stream/author> ?a } "
               "GROUP BY ?a ORDER BY ?a")
    assert list(repo.query(grouped, sparql=True)) == [{"?a": "ann", "?c": 1}, {"?a": "bob", "?c": 1}]


def test_terms_published_after_a_query_are_found(repo: Repository) -> None:
    query = {"@select": "?v", "@where": {"fresh": "?v"}}
    assert rows(repo, query) == []
    repo.publish([{"fresh": "new text"}], sign=False)
    assert rows(repo, query) == [{"?v": "new text"}]
    assert rows(repo, {"@select": "?k", "@where": {"@id": "?k", "fresh": "new text"}}) != []


def test_aggregates_fold_rows_in_bounded_memory(tmp_path: Any) -> None:
    import tracemalloc

    from mizu_core import terms
    from mizu_core.repo.index import IndexWriter, TermDictionary

    repo = Repository.init(tmp_path)
    kind, value = terms.iri("https://mizu.stream/kind"), terms.iri("https://mizu.stream/v")
    with repo.store.writer() as txn:
        writer = IndexWriter(txn, TermDictionary(txn))
        for i in range(100_000):
            s = terms.iri(f"https://example.org/s{i}")
            writer.add([(s, kind, terms.literal(i % 2)), (s, value, terms.literal(i))])
        writer.flush()
    query = {"@select": ["?k", {"?n": {"@count": "?s"}}, {"?top": {"@max": "?v"}}],
             "@where": {"@id": "?s", "kind": "?k", "v": "?v"}, "@groupBy": "?k"}
    tracemalloc.start()
    result = sorted(repo.query(query), key=lambda r: r["?k"])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    repo.close()
    assert result == [{"?k": 0, "?n": 50_000, "?top": 99_998}, {"?k": 1, "?n": 50_000, "?top": 99_999}]
    assert peak < 8 << 20, f"peak {peak / 1e6:.1f} MB"  # 100,000 solutions held would be ~30 MB


def test_plans_longer_than_the_loop_limit_are_chained(repo: Repository) -> None:
    fields = {f"f{i}": i for i in range(20)}  # 21 patterns: more than one generated function
    repo.publish([{"kind": "wide", **fields}, {"kind": "wide", **fields, "f7": "other"}], sign=False)
    where = {"kind": "wide", **{k: f"?{k}" for k in fields}}
    found = rows(repo, {"@select": [f"?{k}" for k in fields], "@where": where})
    assert len(found) == 2
    assert {r["?f7"] for r in found} == {7, "other"}
    assert all(r["?f19"] == 19 for r in found)


def test_two_long_scans_of_one_subject_give_their_product(repo: Repository) -> None:
    repo.publish([{"name": "grid", "x": list(range(100)), "y": list(range(100, 200))}], sign=False)
    q = {"@select": ["?x", "?y"], "@where": {"name": "grid", "x": "?x", "y": "?y"}}
    found = rows(repo, q)
    assert len(found) == 10_000
    assert {(r["?x"], r["?y"]) for r in found} == {(x, y) for x in range(100) for y in range(100, 200)}


def test_rows_are_the_callers_to_change(repo: Repository) -> None:
    """Printed values are cached per repository: a caller changing a row must not change
    what the next query prints."""
    repo.publish([{"author": "ann", "n": 1}], sign=False)
    query = {"@select": ["?m", "?n"], "@where": {"@id": "?m", "n": "?n"}}
    first = rows(repo, query)
    first[0]["?m"]["@id"] = "changed"
    first[0]["?n"] = 99
    again = rows(repo, query)
    assert again[0]["?m"]["@id"] != "changed" and again[0]["?n"] == 1
    based = rows(repo, {"@context": {"@base": "https://mizu.stream/v0/view-raw/"}, **query})
    assert based[0]["?m"]["@id"] == again[0]["?m"]["@id"].removeprefix("https://mizu.stream/v0/view-raw/")


def test_count_per_group_skips_unbound_values(repo: Repository) -> None:
    repo.publish([{"author": "ann", "likes": 1}, {"author": "ann"}, {"author": "bob"}], sign=False)
    query = {"@select": ["?a", {"?n": {"@count": "?l"}}, {"?all": {"@count": "*"}}],
             "@where": {"@graph": {"@id": "?m", "author": "?a"},
                        "@optional": {"@id": "?m", "likes": "?l"}},
             "@groupBy": "?a", "@orderBy": "?a"}
    assert rows(repo, query) == [{"?a": "ann", "?n": 1, "?all": 2}, {"?a": "bob", "?n": 0, "?all": 1}]
