"""Queries: json-rql built from its grammar (and beside it), SPARQL built from its grammar
and mangled, over a small repository whose messages have odd fields (`@id`, `@type`,
`$$x`, deep objects, huge numbers). The contract: rows (JSON, no NaN or infinity), or
valid N-Quads for a graph asked as N-Quads, or a one-line MizuError that is not a Python
exception's name; and the query ends within the repository's `query.timeout` (set low
here: the product's limit, not a wall clock in the test, bounds each example)."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyoxigraph
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mizu_core import Repository
from mizu_core.errors import MizuError
from tests.fuzz import fuzz_settings

TIMEOUT = 2  # seconds: query.timeout of the fuzz repository
TYPE_NAME = re.compile(r"^[A-Z]\w*(Error|Exception|Warning|Exit|Interrupt)\b")
# Python's own words, wherever they are in a message: an internal error passed through
PYTHON = re.compile(r"NoneType|object is not|has no attribute|argument of type|"
                    r"\b(Type|Value|Attribute|Index|Key|Overflow|Recursion|Unicode\w*|Memory)Error\b")
M = "https://mizu.stream/"
XSD = "http://www.w3.org/2001/XMLSchema#"

MESSAGES = [
    {"name": "victim", "n": 1, "tags": ["x", "y"]},
    {"@id": "https://evil.example/x", "@type": "Admin", "@context": {"@vocab": "http://x/"}, "name": "evil",
     "n": 2.5},
    {"name": "a" * 40 + "b", "n": -(2**63), "sub": {"k": "v", "deeper": {"@id": "inner", "n": 2**64 - 1}}},
    {"$$signatures": "not one", "$$x": {"$ref": "#"}, "name": "dollar", "ok": True, "tags": [1, "1", 1.0]},
    {"name": "émoji 🎉", "n": 0, "text": "line\nbreak \"quoted\" \\ back", "empty": ""},
    {"name": "ordered", "list": {"0": "a", "1": {"@value": "b"}}, "flag": False, "n": 1e300},
]


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Repository]:
    r = Repository.init(tmp_path_factory.mktemp("fuzz-queries"))
    assert r.config.repo_file is not None
    r.config.repo_file.set("query.timeout", TIMEOUT)
    r.publish(MESSAGES, sign=False)
    r.publish([{"kind": "bulk", "n": i, "name": f"b{i}"} for i in range(300)], sign=False)
    yield r
    r.close()


def check(repo: Repository, query: Any, sparql: bool = False, nquads: bool = False) -> None:
    """The contract, for one query."""
    try:
        rows = list(repo.query(query, sparql=sparql, nquads=nquads))
    except MizuError as e:
        message = str(e)
        assert message and "\n" not in message and "\r" not in message, repr(message)
        assert not TYPE_NAME.match(message) and not PYTHON.search(message), message
        assert len(message) < 1000, message
        assert e.hint is None or "\n" not in e.hint
        return
    if nquads:
        text = "".join(rows)
        assert all(line.endswith(" .\n") and line.count("\n") == 1 for line in rows)
        quads = list(pyoxigraph.parse(io.BytesIO(text.encode("utf-8")), format=pyoxigraph.RdfFormat.N_QUADS))
        assert len(quads) == len(rows)
        return
    json.dumps(rows, allow_nan=False)  # JSON: no NaN or infinity, only JSON types
    assert all(isinstance(r, dict) for r in rows)


# -- json-rql ------------------------------------------------------------------------------

lone_surrogates = st.sampled_from(["\ud800", "x\udfff", "?\ud834"])
odd_text = st.one_of(
    st.text(max_size=12),
    st.text(st.characters(codec=None, categories=["Cs", "Cc", "Zs", "So"]), max_size=4),
    lone_surrogates,
    st.sampled_from(["", " ", "a b", "x:y", "http://a b", "http://[::1", "#", "#/sub", "%zz", "@id",
                     "@type", "?", "?x", "$x", "$$x", "(", "(a)\\1", "(?=a)", "^(a|a)*$", "(a+)+$", "\n"]),
)
numbers = st.one_of(
    st.integers(-(2**70), 2**70), st.sampled_from([2**63, 2**64, -1, 10**1500, 0]),
    st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([1e308, -1e308, 5e-324]),
)
variables = st.sampled_from(["?s", "?n", "?x", "?o", "?p", "?", "?t", "?\u00e9"])
keys = st.sampled_from(["name", "n", "tags", "sub", "k", "text", "list", "0", "@type", "?p", "$$x",
                        M + "@id", M + "@type", "a b", "x:y", "kind", "flag"])
scalars = st.one_of(odd_text, numbers, st.booleans(), st.none(), variables)
operators = st.sampled_from([
    "@eq", "@neq", "@lt", "@lte", "@gt", "@gte", "@and", "@or", "@not", "@in", "@notin", "@regex",
    "@bound", "@str", "@lang", "@langmatches", "@plus", "@minus", "@times", "@divide", "@concat",
    "@count", "@sum", "@min", "@max", "@avg", "@groupConcat", "@sample", "@nope", XSD + "integer",
    XSD + "double", XSD + "string", XSD + "boolean",
])
templates = st.one_of(
    st.fixed_dictionaries({"$include": st.one_of(st.integers(), st.text(max_size=5), st.none(), st.lists(st.integers(), max_size=2))}),
    st.fixed_dictionaries({"$var": st.one_of(st.integers(), st.text(max_size=3), st.none())}),
)


def _expression(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.builds(lambda op, args: {op: args}, operators, st.lists(children, max_size=4)),
        st.builds(lambda op, arg: {op: arg}, operators, children),
        st.fixed_dictionaries({"@value": st.one_of(odd_text, numbers, st.booleans())},
                              optional={"@type": st.one_of(st.sampled_from([XSD + "integer", XSD + "double", "xsd:x"]), st.integers()),
                                        "@language": st.one_of(st.sampled_from(["en", "en-GB", "1x", ""]), st.integers())}),
        st.fixed_dictionaries({"@id": st.one_of(odd_text, st.integers())}),
        st.fixed_dictionaries({"@vocab": st.one_of(odd_text, st.integers())}),
    )


expressions = st.recursive(st.one_of(scalars, variables), _expression, max_leaves=8)
inline_filters = st.dictionaries(operators, expressions, min_size=1, max_size=2).map(
    lambda d: d)


def _subject(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    values = st.one_of(scalars, children, inline_filters, st.lists(st.one_of(scalars, children), max_size=3),
                       st.fixed_dictionaries({"$ref": st.one_of(odd_text, st.integers())}), templates)
    return st.builds(
        lambda ident, props: ({"@id": ident} if ident is not None else {}) | props,
        st.one_of(st.none(), variables, odd_text, inline_filters, st.integers()),
        st.dictionaries(keys, values, max_size=3),
    )


subjects = st.recursive(st.fixed_dictionaries({"@id": variables, "name": variables}), _subject, max_leaves=6)


def _pattern(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=3),
        st.fixed_dictionaries({}, optional={
            "@graph": children, "@union": st.one_of(st.lists(children, max_size=3), children),
            "@optional": children, "@not": children,
            "@filter": st.one_of(expressions, st.lists(expressions, max_size=2)),
            "@bind": st.one_of(st.dictionaries(variables, expressions, max_size=2), scalars),
            "@values": st.one_of(st.lists(st.dictionaries(variables, st.one_of(scalars, expressions), max_size=2), max_size=3),
                                 scalars),
        }),
        st.fixed_dictionaries({"@filter": expressions}),
        st.fixed_dictionaries({"@not": children}),
        st.builds(lambda q: q, st.deferred(lambda: selects)),
    )


patterns = st.recursive(subjects, _pattern, max_leaves=8)
huge = st.one_of(st.integers(-5, 2**70), st.sampled_from([2**63, 2**64, 10**40, -1, 1.5, "3", None, True]))
modifiers = st.fixed_dictionaries({}, optional={
    "@limit": huge, "@offset": huge,
    "@orderBy": st.one_of(variables, expressions, st.lists(st.one_of(variables, st.fixed_dictionaries({"@desc": variables})), max_size=2)),
    "@groupBy": st.one_of(variables, st.lists(variables, max_size=2), scalars),
    "@having": expressions,
    "@context": st.one_of(st.fixed_dictionaries({}, optional={
        "@vocab": st.one_of(odd_text, st.none(), st.integers()), "@base": st.one_of(odd_text, st.integers()),
        "x": st.one_of(odd_text, st.fixed_dictionaries({"@id": odd_text, "@type": st.sampled_from(["@id", 5])}))}),
        st.integers(), odd_text),
})
projections = st.one_of(
    variables, st.just("*"), st.lists(variables, max_size=3),
    st.dictionaries(variables, expressions, min_size=1, max_size=2), odd_text,
)
selects = st.builds(
    lambda kind, proj, where, mods: {kind: proj, "@where": where} | mods,
    st.sampled_from(["@select", "@distinct"]), projections, patterns, modifiers,
)
constructs = st.builds(
    lambda template, where, mods: {"@construct": template} | ({"@where": where} if where is not None else {}) | mods,
    st.one_of(subjects, st.lists(subjects, max_size=2)), st.one_of(st.none(), patterns), modifiers,
)
describes = st.builds(
    lambda what, where, mods: {"@describe": what} | ({"@where": where} if where is not None else {}) | mods,
    st.one_of(variables, odd_text, st.lists(st.one_of(variables, odd_text), max_size=2)),
    st.one_of(st.none(), patterns), modifiers,
)


def nested(depth: int, leaf: Any, wrap: str) -> Any:
    q = leaf
    for _ in range(depth):
        q = {wrap: q} if wrap != "[]" else [q]
    return q


deep_queries = st.builds(
    lambda depth, wrap: {"@select": "?x", "@where": [{"@id": "?s", "name": "?x"},
                                                     {"@filter": nested(depth, "?x", wrap)}]}
    if wrap in ("@not", "[]") else {"@select": "?x", "@where": nested(depth, {"@id": "?s", "name": "?x"}, wrap)},
    st.integers(200, 3000), st.sampled_from(["@not", "@graph", "[]", "@optional"]),
)
unions = st.builds(
    lambda n: {"@select": "?s", "@where": {"@union": [{"@id": "?s", "name": f"b{i}"} for i in range(n)]}},
    st.integers(1, 600),
)


@fuzz_settings(250)
@given(st.one_of(selects, constructs, describes))
def test_jsonrql_queries_answer_or_refuse_in_one_line(repo: Repository, query: Any) -> None:
    check(repo, query)
    if "@construct" in query or "@describe" in query:
        check(repo, query, nquads=True)


@fuzz_settings(15)
@given(st.one_of(deep_queries, unions))
def test_deep_and_long_queries_are_bounded(repo: Repository, query: Any) -> None:
    check(repo, query)


@fuzz_settings(60)
@given(st.recursive(st.one_of(scalars, st.just({})), lambda c: st.one_of(
    st.lists(c, max_size=3), st.dictionaries(st.one_of(keys, odd_text, st.sampled_from(
        ["@select", "@where", "@construct", "@describe", "@limit", "@filter", "@union", "@context"])), c, max_size=4)),
    max_leaves=10))
def test_any_json_is_a_query_or_a_one_line_error(repo: Repository, query: Any) -> None:
    check(repo, query)


# -- SPARQL --------------------------------------------------------------------------------

sparql_terms = st.one_of(
    st.sampled_from(["?s", "?p", "?o", "?x", "[]", "_:b", f"<{M}name>", f"<{M}n>", f"<{M}@id>", "<http://a b>",
                     "<rel>", '"victim"', '"x"@en', f'"1"^^<{XSD}integer>', f'"x"^^<{XSD}integer>',
                     "1e999", "99999999999999999999999999", "-0.0", "true", '"\\ud800"', "'''a\nb'''"]),
    st.integers(-(2**70), 2**70).map(str),
)
sparql_exprs = st.recursive(sparql_terms, lambda c: st.one_of(
    st.builds(lambda a, op, b: f"({a} {op} {b})", c, st.sampled_from(["=", "!=", "<", ">", "+", "-", "*", "/", "&&", "||"]), c),
    st.builds(lambda f, args: f"{f}({', '.join(args)})",
              st.sampled_from(["REGEX", "STR", "LANG", "LANGMATCHES", "BOUND", "CONCAT", "xsd:integer",
                               "xsd:double", "<http://x/f>", "STRLEN", "COALESCE", "IF", "isIRI"]),
              st.lists(st.one_of(c, st.sampled_from(["'^(a|a)*$'", "'(a+)+$'", "'('", "'(a)\\\\1'", "'i'", "'k'"])),
                       max_size=3)),
    st.builds(lambda e: f"!{e}", c),
), max_leaves=6)
triple_patterns = st.builds(lambda s, p, o: f"{s} {p} {o} .", sparql_terms, sparql_terms, sparql_terms)


def _group(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.lists(children, max_size=3).map(" ".join),
        st.builds(lambda a, b: f"{{ {a} }} UNION {{ {b} }}", children, children),
        children.map(lambda a: f"OPTIONAL {{ {a} }}"),
        children.map(lambda a: f"MINUS {{ {a} }}"),
        children.map(lambda a: f"FILTER NOT EXISTS {{ {a} }}"),
        sparql_exprs.map(lambda e: f"FILTER({e})"),
        st.builds(lambda e, v: f"BIND({e} AS {v})", sparql_exprs, st.sampled_from(["?x", "?y", "?s"])),
        st.builds(lambda v, vals: f"VALUES {v} {{ {' '.join(vals)} }}", st.sampled_from(["?x", "?s"]),
                  st.lists(st.one_of(sparql_terms, st.just("UNDEF")), max_size=3)),
        children.map(lambda a: f"{{ SELECT * WHERE {{ {a} }} LIMIT 2 }}"),
        children.map(lambda a: f"GRAPH ?g {{ {a} }}"),
    )


groups = st.recursive(triple_patterns, _group, max_leaves=6)
sparql_modifiers = st.builds(
    lambda order, limit, offset: order + limit + offset,
    st.sampled_from(["", " ORDER BY ?s", " ORDER BY DESC(?x)", " GROUP BY ?s", " ORDER BY RAND()"]),
    st.sampled_from(["", " LIMIT 2", " LIMIT 99999999999999999999999", " LIMIT 0"]),
    st.sampled_from(["", " OFFSET 1", " OFFSET 99999999999999999999999"]),
)
sparql_queries = st.builds(
    lambda head, body, mods: f"PREFIX xsd: <{XSD}> {head} WHERE {{ {body} }}{mods}",
    st.sampled_from(["SELECT *", "SELECT DISTINCT ?s ?x", "SELECT (COUNT(*) AS ?c)", "SELECT (SUM(?o) AS ?c)",
                     "SELECT (GROUP_CONCAT(?o; SEPARATOR='|') AS ?c)", "ASK", "CONSTRUCT { ?s ?p ?o }",
                     "CONSTRUCT { ?o <http://p> ?s . _:b ?p 'x' }", 'CONSTRUCT { "lit" <http://p> ?o }',
                     "DESCRIBE ?s", "DESCRIBE <http://a>", "SELECT ?x ?x"]),
    groups, sparql_modifiers,
)


def mangle(text: str, data: st.DataObject) -> str:
    """Cut, duplicate or insert a few characters: SPARQL-like garbage."""
    for _ in range(data.draw(st.integers(0, 3))):
        if not text:
            break
        at = data.draw(st.integers(0, len(text) - 1))
        action = data.draw(st.sampled_from(["cut", "dup", "insert"]))
        if action == "cut":
            text = text[:at] + text[at + data.draw(st.integers(1, 5)):]
        elif action == "dup":
            text = text[:at] + text[at:at + 20] * 2 + text[at + 20:]
        else:
            text = text[:at] + data.draw(st.sampled_from(["{", "}", "(", "\"", "'", "<", "?", "\\", "\ud800", "#"])) + text[at:]
    return text


@fuzz_settings(200)
@given(sparql_queries, st.data())
def test_sparql_answers_or_refuses_in_one_line(repo: Repository, text: str, data: st.DataObject) -> None:
    if data.draw(st.booleans()):
        text = mangle(text, data)
    check(repo, text, sparql=True)
    if "CONSTRUCT" in text or "DESCRIBE" in text:
        check(repo, text, sparql=True, nquads=True)


@fuzz_settings(40)
@given(st.text(max_size=80))
def test_any_text_is_sparql_or_a_one_line_error(repo: Repository, text: str) -> None:
    check(repo, text, sparql=True)


def test_repository_limit_applies(repo: Repository, tmp_path: Path) -> None:
    """The fuzz repository's own limit is the one the product reads."""
    from mizu_core.query.deadline import configured_timeout

    assert configured_timeout(repo.config) == TIMEOUT
