"""m-ld's read-only test cases (tests/data/m-ld), run against Mizu's engine.

Each case writes plain subjects into an empty store, then reads (select, describe,
construct), gets one subject or asks whether patterns match, and compares with m-ld's
expected JSON under its match mode. Read-only means: the setup only inserts data, and
nothing uses m-ld's lists (`@list`) or updates, which have no counterpart in Mizu, whose
messages never change. m-ld's context is `@base http://test.m-ld.org/`,
`@vocab http://test.m-ld.org/#`.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from mizu_core import Repository, terms
from mizu_core.query import algebra as a
from mizu_core.query.context import Context
from mizu_core.query.engine import evaluate
from mizu_core.query.jsonrql import Parser
from mizu_core.repo.index import IndexWriter, TermDictionary, TripleIndex
from tests.conftest import DATA

CASES = DATA / "m-ld" / "MeldClone.cases.json"
BASE = "http://test.m-ld.org/"
CONTEXT = Context(vocab=BASE + "#", base=BASE)
ANY_ID = "<blank-or-genid>"


def read_only(case: dict[str, Any]) -> bool:
    text = json.dumps(case)
    setup = json.dumps(case.get("setup", []))
    plain = not any(k in setup for k in ("@delete", "@update", "@where", '"?'))
    return plain and "@list" not in text and any(k in case for k in ("read", "get", "ask"))


ALL = json.loads(CASES.read_text("utf-8"))["cases"]
READ_ONLY = [c for c in ALL if read_only(c)]


def load(writes: list[Any]) -> Repository:
    """Insert m-ld writes (subjects, @graph groups, @insert) as triples."""
    triples: list[tuple[bytes, bytes, bytes]] = []
    parser = Parser()
    for i, write in enumerate(writes):
        write = write.get("@insert", write)
        for subject in write.get("@graph", [write]) if isinstance(write, dict) else write:
            patterns: list[a.TriplePattern] = []
            parser.subject(subject, f"setup[{i}]", CONTEXT, patterns, [])
            for t in patterns:  # anonymous nodes become blank nodes of their own
                s, p, o = (terms.blank(x.name) if isinstance(x, a.Var) else x for x in (t.s, t.p, t.o))
                triples.append((s, p, o))
    repo = Repository.memory()
    with repo.store.writer() as txn:
        writer = IndexWriter(txn, TermDictionary(txn))
        writer.add(sorted(set(triples)))
        writer.flush()
    return repo


def run(repo: Repository, query: dict[str, Any]) -> list[dict[str, Any]]:
    parser = Parser()
    parsed = parser.query(query, "", CONTEXT)
    with repo.store.reader() as txn:
        return list(evaluate(parsed, parser.context, TripleIndex(txn)))


def ask(repo: Repository, pattern: dict[str, Any]) -> bool:
    if "@where" not in pattern:
        return True  # the empty pattern matches the empty solution
    return bool(run(repo, {"@select": "*", "@where": pattern["@where"], "@limit": 1}))


def matches(expected: Any, actual: Any, subset: bool) -> bool:
    """Deep equality (or `subset`: expected keys only), with ANY_ID matching any blank."""
    if expected == ANY_ID:
        return isinstance(actual, str) and actual.startswith("_:")
    if isinstance(expected, dict):
        if not isinstance(actual, dict) or (not subset and set(expected) != set(actual)):
            return False
        return all(k in actual and matches(v, actual[k], subset) for k, v in expected.items())
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(expected) != len(actual):
            return False
        return unordered(expected, actual, subset)
    return bool(expected == actual and type(expected) is type(actual))


def unordered(expected: list[Any], actual: list[Any], subset: bool) -> bool:
    remaining = list(actual)
    for e in expected:
        found = next((i for i, x in enumerate(remaining) if matches(e, x, subset)), None)
        if found is None:
            return False
        remaining.pop(found)
    return True


def without_row_ids(rows: list[Any]) -> list[Any]:
    """m-ld gives select rows a generated blank @id; Mizu's rows are plain variable maps."""
    return [{k: v for k, v in r.items() if k != "@id"} if isinstance(r, dict) else r for r in rows]


def test_the_read_only_cases_are_all_here() -> None:
    assert len(READ_ONLY) == 37


@pytest.mark.parametrize("case", READ_ONLY, ids=[c["name"] for c in READ_ONLY])
def test_mld_case(case: dict[str, Any]) -> None:
    repo = load(case["setup"])
    mode, expected = case["match"], case["expect"]
    if "ask" in case:
        assert [ask(repo, p) for p in case["ask"]] == expected
        return
    if "get" in case:
        ids = case["get"] if isinstance(case["get"], list) else [case["get"]]
        got = [(run(repo, {"@describe": i}) or [None])[0] for i in ids]
        wanted = expected if isinstance(case["get"], list) else [expected]
        for e, g in zip(wanted, got, strict=True):
            assert (g is not None) if e == "defined" or mode == "defined" else matches(e, g, False), (e, g)
        return
    actual = run(repo, case["read"])
    if "@select" in case["read"] or "@distinct" in case["read"]:
        expected = without_row_ids(expected)
    if mode == "exact" or mode == "unordered":
        assert len(actual) == len(expected) and unordered(expected, actual, subset=False), actual
    elif mode in ("objects-match", "unordered-objects-match"):
        assert len(actual) >= len(expected) and unordered(expected, actual[: len(actual)], subset=True), actual
    else:
        pytest.fail(f"match mode {mode} not handled")
