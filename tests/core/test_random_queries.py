"""Property-based differential testing: random data, random queries, mizu vs pyoxigraph.

Hypothesis draws a small dataset and a query built from groups (triples, UNION, OPTIONAL,
NOT EXISTS, FILTER), wrapped in DISTINCT, aggregation or ORDER BY + LIMIT; the query is
written both in json-rql and in SPARQL. Mizu answers both; pyoxigraph answers the SPARQL.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mizu_core import Repository, terms
from mizu_core.query.engine import run, run_sparql
from mizu_core.repo.index import IndexWriter, TermDictionary, TripleIndex
from tests.core.test_conformance import canonical, oxi_json, oxi_term

pyoxigraph = pytest.importorskip("pyoxigraph")

EX = "http://example.org/"
VARS = ["?a", "?b", "?c"]
PREDICATES = ["p0", "p1", "p2"]
NODES = ["s0", "s1", "s2"]

node_terms = st.sampled_from(NODES).map(lambda n: terms.iri(EX + n))
object_terms = node_terms | st.sampled_from([1, 2, 3, "x", "y"]).map(terms.literal)
triples = st.tuples(node_terms, st.sampled_from(PREDICATES).map(lambda p: terms.iri(EX + p)), object_terms)
datasets = st.sets(triples, max_size=25)


# -- query pieces, each as (json-rql, SPARQL) -----------------------------------------------

subjects = st.sampled_from([*VARS, "ex:s0"])
objects = st.sampled_from([*VARS, 1, 2, "x", {"@id": "ex:s1"}])


def sparql_term(value: Any) -> str:
    if isinstance(value, dict):
        return value["@id"]
    if isinstance(value, str) and not value.startswith(("?", "ex:")):
        return json.dumps(value)
    return str(value)


@st.composite
def triple_patterns(draw: Any) -> tuple[dict[str, Any], str]:
    s, p, o = draw(subjects), draw(st.sampled_from(PREDICATES)), draw(objects)
    return {"@id": s, f"ex:{p}": o}, f"{s} ex:{p} {sparql_term(o)} ."


@st.composite
def conditions(draw: Any) -> tuple[Any, str]:
    a, b = draw(st.sampled_from(VARS)), draw(st.sampled_from(VARS))
    n = draw(st.integers(0, 3))
    kind = draw(st.sampled_from(["gt", "lt", "eq", "bound", "unbound", "or"]))
    if kind == "gt":
        return {"@gt": [a, n]}, f"({a} > {n})"
    if kind == "lt":
        return {"@lt": [a, n]}, f"({a} < {n})"
    if kind == "eq":
        return {"@eq": [a, b]}, f"({a} = {b})"
    if kind == "bound":
        return {"@bound": a}, f"BOUND({a})"
    if kind == "unbound":
        return {"@not": {"@bound": a}}, f"(!BOUND({a}))"
    return {"@or": [{"@eq": [a, "x"]}, {"@gt": [a, n]}]}, f'({a} = "x" || {a} > {n})'


@st.composite
def groups(draw: Any, depth: int = 2) -> tuple[dict[str, Any], str]:
    graph = draw(st.lists(triple_patterns(), min_size=1, max_size=3))
    jrql: dict[str, Any] = {"@graph": [g[0] for g in graph]}
    sparql = " ".join(g[1] for g in graph)
    if depth > 0 and draw(st.booleans()):
        left, right = draw(groups(depth - 1)), draw(groups(depth - 1))
        jrql["@union"] = [left[0], right[0]]
        sparql += f" {{ {left[1]} }} UNION {{ {right[1]} }}"
    if depth > 0 and draw(st.booleans()):
        optional = draw(groups(depth - 1))
        jrql["@optional"] = optional[0]
        sparql += f" OPTIONAL {{ {optional[1]} }}"
    if depth > 0 and draw(st.booleans()):
        negated = draw(groups(depth - 1))
        jrql["@not"] = negated[0]
        sparql += f" FILTER NOT EXISTS {{ {negated[1]} }}"
    if draw(st.booleans()):
        condition = draw(conditions())
        jrql["@filter"] = condition[0]
        sparql += f" FILTER {condition[1]}"
    return jrql, sparql


@st.composite
def queries(draw: Any) -> tuple[dict[str, Any], str, bool]:
    """A query in both languages, and whether its result is fully determined."""
    where, body = draw(groups())
    if draw(st.booleans()):  # SPEC §4's form: `{"@not": pattern}` as a @where array element
        negated = draw(groups(0))
        where, body = [where, {"@not": negated[0]}], f"{{ {body} }} FILTER NOT EXISTS {{ {negated[1]} }}"
    context = {"ex": EX}
    prefix = f"PREFIX ex: <{EX}>\n"
    shape = draw(st.sampled_from(["select", "distinct", "count", "order"]))
    if shape == "select":
        return {"@context": context, "@select": "*", "@where": where}, f"{prefix}SELECT * {{ {body} }}", True
    if shape == "distinct":
        v = draw(st.sampled_from(VARS))
        return ({"@context": context, "@distinct": v, "@where": where},
                f"{prefix}SELECT DISTINCT {v} {{ {body} }}", True)
    if shape == "count":
        v = draw(st.sampled_from(VARS))
        return ({"@context": context, "@select": [v, {"?n": {"@count": "*"}}], "@where": where,
                 "@groupBy": v}, f"{prefix}SELECT {v} (COUNT(*) AS ?n) {{ {body} }} GROUP BY {v}", True)
    v, limit = draw(st.sampled_from(VARS)), draw(st.integers(1, 4))
    return ({"@context": context, "@select": "*", "@where": where, "@orderBy": v, "@limit": limit},
            f"{prefix}SELECT * {{ {body} }} ORDER BY {v} LIMIT {limit}", False)


@settings(max_examples=int(__import__("os").environ.get("MIZU_HYPOTHESIS_EXAMPLES", "150")), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(datasets, queries())
def test_random_queries_agree_with_pyoxigraph(data: set[tuple[bytes, bytes, bytes]], query: Any) -> None:
    jrql, sparql, determined = query
    repo = Repository.memory()
    with repo.store.writer() as txn:
        writer = IndexWriter(txn, TermDictionary(txn))
        writer.add(sorted(data))
        writer.flush()
    store = pyoxigraph.Store()
    store.extend(pyoxigraph.Quad(*(oxi_term(t) for t in triple)) for triple in data)
    result = store.query(sparql)
    theirs = sorted(canonical({f"?{v.value}": oxi_json(s[v.value]) for v in result.variables
                               if s[v.value] is not None}) for s in result)
    with repo.store.reader() as txn:
        ours = sorted(canonical(r) for r in run(jrql, TripleIndex(txn)))
        ours_sparql = sorted(canonical(r) for r in run_sparql(sparql, TripleIndex(txn)))
    if determined:
        assert ours == theirs, (jrql, sparql)
        assert ours_sparql == theirs, sparql
    else:
        assert len(ours) == len(theirs) == len(ours_sparql), (jrql, sparql)
