"""Subject patterns: the unit SPEC §6 matches messages with. A message is covered by a
query (for a subscription's records, or a local filter) when one of its nodes matches a
subject pattern of the query on its own, nested objects included.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from typing import Any

from mizu_core import terms
from mizu_core.message.cid import CID
from mizu_core.message.triples import message_triples
from mizu_core.message.uris import VIEW_RAW
from mizu_core.query.algebra import BGP, TriplePattern, Var
from mizu_core.query.deadline import Deadline
from mizu_core.query.evaluate import Evaluator
from mizu_core.query.expressions import Solution
from mizu_core.query.jsonrql import NODE_PREFIX
from mizu_core.repo.index import TripleIndex
from mizu_core.repo.ingest import read_message
from mizu_core.repo.kv import Txn

_PREFIX = terms.iri(VIEW_RAW)


def subject_patterns(parsed: Any) -> list[tuple[TriplePattern, ...]]:
    """Every subject pattern of a parsed query, wherever it sits (@not, @union,
    @optional, sub-queries): the triples of one subject with its nested objects."""
    found: list[tuple[TriplePattern, ...]] = []
    for bgp in _bgps(parsed):
        found.extend(_split_subjects(bgp.triples))
    return found


def _bgps(node: Any) -> Iterator[BGP]:
    if isinstance(node, BGP):
        yield node
    elif dataclasses.is_dataclass(node) and not isinstance(node, type):
        for f in dataclasses.fields(node):
            yield from _bgps(getattr(node, f.name))
    elif isinstance(node, (tuple, list)):
        for item in node:
            yield from _bgps(item)


def _split_subjects(triples: tuple[TriplePattern, ...]) -> list[tuple[TriplePattern, ...]]:
    # A nested object (a fresh node variable) belongs to its parent's subject pattern;
    # variables the user named join subjects, and each subject counts on its own.
    parent: dict[Any, Any] = {}

    def root(x: Any) -> Any:
        while x in parent:
            x = parent[x]
        return x

    for t in triples:
        if isinstance(t.o, Var) and t.o.name.startswith(NODE_PREFIX) and root(t.o) != root(t.s):
            parent[root(t.o)] = root(t.s)
    groups: dict[Any, list[TriplePattern]] = {}
    for t in triples:
        groups.setdefault(root(t.s), []).append(t)
    return [tuple(g) for g in groups.values()]


def message_of(term: bytes) -> CID | None:
    """The message a node IRI belongs to (`…/view-raw/<cid>/path` → cid)."""
    if not term.startswith(_PREFIX):
        return None
    try:
        return CID.parse(term[len(_PREFIX):].split(b"/", 1)[0].decode("ascii")).to_v1()
    except (ValueError, UnicodeDecodeError):
        return None


def matching_messages(
    patterns: list[tuple[TriplePattern, ...]], index: TripleIndex,
    among: Iterable[CID] | None = None, txn: Txn | None = None,
    budget: float | None = None,
) -> set[CID]:
    """Messages holding a node that some subject pattern matches. With `among`, only
    nodes of those messages are tried (what a refresh after new arrivals needs). With
    `budget` (seconds), a QueryError when the work takes longer (a peer's ad-hoc query)."""
    late = None if budget is None else f"the query needs more than {budget:g} s here"
    evaluator = Evaluator(index, Deadline(budget, late))
    starts: list[bytes] | None = None
    if among is not None:
        assert txn is not None
        starts = []
        for cid in among:
            message = read_message(txn, cid)
            if message is not None:
                starts.extend({s for s, _, _ in message_triples(cid, message)})
    found: set[CID] = set()
    for pattern in patterns:
        subjects = [t.s for t in pattern]
        objects = {t.o for t in pattern}
        top = next((s for s in subjects if s not in objects), subjects[0])
        if isinstance(top, Var) and starts is not None:
            seeds: Iterator[Solution] = iter([{top.name: evaluator.encode(s)} for s in starts])
        elif starts is not None and not starts:
            continue
        else:
            seeds = iter([{}])
        for solution in evaluator.eval(BGP(pattern), seeds):  # the deadline is checked inside
            for s in subjects:
                value = solution.get(s.name) if isinstance(s, Var) else s
                owner = message_of(evaluator.decode(value)) if value is not None else None
                if owner is not None:
                    found.add(owner)
    return found
