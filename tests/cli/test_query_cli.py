"""`mizu query`: output formats, stored queries, parameters and one-line errors."""

from __future__ import annotations

import json
import re

from tests.cli.conftest import Mizu
from tests.cli.test_put_view import assert_one_line_error
from tests.conftest import SPEC_VECTORS

TUTORIAL = '{"@select": "?content", "@where": {"author": "solipsis", "content": "?content"}}'


def publish_poems(mizu: Mizu) -> None:
    lines = "".join(json.dumps(m) + "\n" for m, _ in SPEC_VECTORS[1:])
    assert mizu("put", "--lines", "--no-sign", input=lines).code == 0


def test_tutorial_output_is_the_documented_json(mizu: Mizu) -> None:
    publish_poems(mizu)
    result = mizu("query", TUTORIAL)
    assert result.code == 0
    assert sorted(json.loads(result.stdout), key=str) == [
        {"?content": "roses are red"}, {"?content": "violets are blue"}]
    assert json.loads(mizu("query", input=TUTORIAL).stdout) == json.loads(result.stdout)


def test_formats(mizu: Mizu) -> None:
    publish_poems(mizu)
    q = '{"@select": ["?a", "?c"], "@where": {"author": "?a", "content": "?c"}, "@orderBy": "?c"}'
    ndjson = [json.loads(x) for x in mizu("query", "-f", "ndjson", q).stdout.splitlines()]
    assert [r["?c"] for r in ndjson] == ["grass is green", "roses are red", "violets are blue"]
    assert mizu("query", "-f", "csv", q).stdout.splitlines()[:2] == ["a,c", "shakespeare,grass is green"]
    assert mizu("query", "-f", "tsv", q).stdout.splitlines()[1] == "shakespeare\tgrass is green"
    table = mizu("query", "-f", "table", q).stdout
    assert "shakespeare" in table and table.rstrip().endswith("(3 rows)")
    assert mizu("query", "-f", "json", '{"@select": "?x", "@where": {"nothing": "?x"}}').stdout == "[]\n"


def test_stored_query_with_params(mizu: Mizu) -> None:
    publish_poems(mizu)
    stored = json.dumps({"name": "poems", "by_author": {
        "@select": "?c", "@where": {"author": {"$var": "who"}, "content": "?c"}}})
    cid = mizu("put", input=stored).stdout.strip()
    result = mizu("query", "--cid", f"{cid}/by_author", "--param", "who=shakespeare")
    assert json.loads(result.stdout) == [{"?c": "grass is green"}]
    assert_one_line_error(mizu("query", "--cid", f"{cid}/by_author"), 2, "missing parameter 'who'")
    assert_one_line_error(mizu("query", "--cid", cid), 1, "the message is not a query")
    assert_one_line_error(mizu("query", "--cid", f"{cid}/by_author", "-p", "novalue"), 2, "NAME=VALUE")


def test_bad_queries_are_one_line(mizu: Mizu) -> None:
    assert_one_line_error(mizu("query", '{"@select": "?x", "@where": {"@graph": {"a": "?x"}, "@filter": {"@nope": 1}}}'),
                          1, "@where.@filter.@nope: unknown operator")
    assert_one_line_error(mizu("query", '{"@select": '), 1, "invalid JSON at line 1")
    assert_one_line_error(mizu("query", "-f", "xml", TUTORIAL), 2, "unknown format")
    assert_one_line_error(mizu("query", "--sparql", "SELECT * WHERE {\n  ?s ?p }"), 1,
                          "SPARQL syntax error at line 2 column")
    assert_one_line_error(mizu("query", "--sparql", "SELECT * FROM <http://x/> { ?s ?p ?o }"), 1, "single graph")
    assert_one_line_error(mizu("query", "--sparql", "--cid", "x"), 2, "--sparql takes the query text")


def test_sparql(mizu: Mizu) -> None:
    publish_poems(mizu)
    select = ("PREFIX m: <https://mizu.stream/>\n"
              "SELECT ?content WHERE { ?msg m:author \"solipsis\" ; m:content ?content } ORDER BY ?content")
    assert json.loads(mizu("query", "--sparql", select).stdout) == [
        {"?content": "roses are red"}, {"?content": "violets are blue"}]
    ask = "PREFIX m: <https://mizu.stream/> ASK { ?msg m:author \"shakespeare\" }"
    assert json.loads(mizu("query", "--sparql", ask).stdout) == [{"@ask": True}]
    construct = ("PREFIX m: <https://mizu.stream/> CONSTRUCT { ?msg m:by ?a } WHERE { ?msg m:author ?a }")
    shaped = json.loads(mizu("query", "--sparql", construct).stdout)
    assert sorted(s["m:by"] for s in shaped) == ["shakespeare", "solipsis", "solipsis"]


def test_nquads_is_read_by_an_independent_parser(mizu: Mizu) -> None:
    import pyoxigraph

    publish_poems(mizu)
    mizu("put", input=json.dumps({"title": "tab\there \"quoted\" é", "n": 1.5, "ok": True}))
    construct = '{"@construct": {"@id": "?m", "?p": "?o"}, "@where": {"@id": "?m", "?p": "?o"}}'
    out = mizu("query", "-f", "nquads", construct)
    assert out.code == 0
    quads = list(pyoxigraph.parse(out.stdout.encode(), format=pyoxigraph.RdfFormat.N_QUADS))
    assert len(quads) == len(out.stdout.splitlines()) > 9
    assert any(q.object.value == 'tab\there "quoted" é' for q in quads)
    described = mizu("query", "-f", "nquads", "--sparql",
                     'DESCRIBE ?m WHERE { ?m <https://mizu.stream/author> "shakespeare" }')
    assert len(described.stdout.splitlines()) == 2
    assert_one_line_error(mizu("query", "-f", "nquads", TUTORIAL), 1, "N-Quads output needs")


def test_hostile_queries_are_one_line_errors(mizu: Mizu) -> None:
    """Issue 21: well-formed but odd queries never end in a Python type name or a
    traceback, and rdflib prints nothing."""
    publish_poems(mizu)
    for query, fragment in [
        ('{"@select": "?c", "@where": [{"content": "?c"}, {"@filter": {"@gt": ["?c"]}}]}', "@gt takes 2 arguments"),
        ('{"@select": "?c", "@where": {"@graph": {"content": "?c"}, "@bind": {"?x": "\\ud800"}}}', "lone surrogate"),
        ('{"@select": "?c", "@where": {"content": {"@id": "?c", "@regex": "(a)\\\\1"}}}', "backreferences"),
        ('{"@select": "?c", "@where": {"$include": 5}}', "$include takes a string"),
        ('{"@select": "?c", "@where": {"content": "?c"}, "@limit": 1e999}', "non-negative integer"),
    ]:
        result = mizu("query", query)
        assert_one_line_error(result, 1, fragment)
        assert not re.search(r"error: [A-Z]\w*(Error|Exception)", result.stderr)
    big = '{"@select": "?c", "@where": {"content": "?c"}, "@limit": 99999999999999999999999}'
    assert len(json.loads(mizu("query", big).stdout)) == 3
    for text, fragment in [
        ("SELECT * WHERE { ?s ?p 'x'^^<http://www.w3.org/2001/XMLSchema#integer> . FILTER(REGEX(?p, '(')) }",
         "invalid regex"),
        ("SELECT * WHERE { { { ?s ?p ?o }", "SPARQL syntax error"),
        ('CONSTRUCT { "lit" <http://p> ?o } WHERE { ?s ?p ?o', "SPARQL syntax error"),
    ]:
        assert_one_line_error(mizu("query", "--sparql", text), 1, fragment)
    quads = mizu("query", "-f", "nquads", "--sparql", 'CONSTRUCT { "lit" <http://p> ?o . ?s <http://p> ?o } WHERE { ?s ?p ?o }')
    assert quads.code == 0 and quads.stderr == "" and all(line.startswith("<") for line in quads.stdout.splitlines())


def test_query_timeout(mizu: Mizu) -> None:
    """A quadratic query on a few thousand messages stops at query.timeout; catastrophic
    regexes answer at once (RE2); MINUS of a pattern with itself is hashed."""
    lines = "".join(json.dumps({"kind": "bulk", "n": i, "text": "a" * 40 + "!"}) + "\n" for i in range(3000))
    assert mizu("put", "--lines", "--no-sign", input=lines).code == 0
    assert mizu("config", "set", "query.timeout", "1").code == 0
    not_exists = ("SELECT ?s WHERE { ?s <https://mizu.stream/n> ?n "
                  "FILTER NOT EXISTS { ?t <https://mizu.stream/n> ?m FILTER(?m < 0) } }")
    assert_one_line_error(mizu("query", "--sparql", not_exists), 1, "query timed out after 1 s (query.timeout)")
    cross = ('{"@select": "?a", "@where": [{"@id": "?a", "n": "?x"}, {"@id": "?b", "n": "?y"},'
             ' {"@filter": {"@lt": [{"@plus": ["?x", "?y"]}, -1]}}]}')
    result = mizu("query", cross)
    assert_one_line_error(result, 1, "query timed out after 1 s")
    assert "query.timeout" in result.stderr.splitlines()[1]  # the hint: how to raise it
    for pattern in ("^(a|a)*$", "(a+)+$"):
        regex = json.dumps({"@select": "?s", "@where": {"@id": "?s", "text": {"@regex": pattern}}})
        assert json.loads(mizu("query", regex).stdout) == []
    minus = ("SELECT ?s WHERE { ?s <https://mizu.stream/n> ?n MINUS { ?s <https://mizu.stream/n> ?n } }")
    assert json.loads(mizu("query", "--sparql", minus).stdout) == []
    assert mizu("config", "set", "query.timeout", "0").code == 0
    assert len(json.loads(mizu("query", '{"@select": "?s", "@where": {"@id": "?s", "n": "?n"}}').stdout)) == 3000
