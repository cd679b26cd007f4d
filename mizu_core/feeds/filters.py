"""Local filters (SPEC §6), from the repository config: `filters.pin`, `filters.private`,
`filters.block`, `filters.discard`. Each holds json-rql `@where` patterns (JSON text, one
or an array) or the CIDs of query messages; a message is covered when it matches a subject
pattern on its own, the same rule that picks a subscription's records.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from mizu_core.errors import UsageError
from mizu_core.feeds.queries import compile_query
from mizu_core.message.cid import CID
from mizu_core.query import subjects
from mizu_core.query.algebra import TriplePattern
from mizu_core.repo import arrivals
from mizu_core.repo.index import TripleIndex
from mizu_core.repo.ingest import Ingest, Prepared, read_message
from mizu_core.repo.kv import MemoryStore, Txn
from mizu_core.repo.repository import Repository

KINDS = ("pin", "private", "block", "discard")
_cache: dict[tuple[int, str, int], set[CID]] = {}  # (repo, kind, next_seq) → messages


def patterns(repo: Repository, txn: Txn, kind: str) -> list[tuple[TriplePattern, ...]]:
    value = repo.config.get(f"filters.{kind}")
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    found: list[tuple[TriplePattern, ...]] = []
    for item in items:
        found.extend(subjects.subject_patterns(_parse(txn, kind, item)))
    return found


def _parse(txn: Txn, kind: str, item: Any) -> Any:
    where = f"filters.{kind}"
    if isinstance(item, str) and not item.lstrip().startswith(("{", "[")):
        try:
            cid = CID.parse(item.strip()).to_v1()
        except ValueError:
            raise UsageError(f"{where}: '{item}' is neither a json-rql pattern nor a CID") from None
        message = read_message(txn, cid)
        if message is None:
            raise UsageError(f"{where}: query {cid} is not in the repository")
        return compile_query(txn, message, cid)
    try:
        pattern = json.loads(item) if isinstance(item, str) else item
    except ValueError as e:
        raise UsageError(f"{where}: not JSON ({e})") from None
    query = {"@describe": "?_filtered", "@where": pattern}
    return compile_query(txn, query)


def covered(repo: Repository, kind: str) -> set[CID]:
    """The stored messages a filter covers (cached until the next arrival)."""
    if repo.config.get(f"filters.{kind}") is None:
        return set()
    with repo.store.reader() as txn:
        key = (id(repo), kind, arrivals.next_seq(txn))
        found = _cache.get(key)
        if found is None:
            found = subjects.matching_messages(patterns(repo, txn, kind), TripleIndex(txn))
            # One generation is enough (arrivals make it stale). The server's worker threads
            # share it: each returns what it computed, whatever another thread left here.
            _cache.clear()
            _cache[key] = found
        return found


def hidden_subjects(repo: Repository, txn: Txn, kinds: tuple[str, ...] = ("block",)) -> set[int]:
    """Term ids of every node of the messages a block filter covers (or the filters of
    `kinds`: a public answer hides the private ones too)."""
    from mizu_core.message.triples import message_triples
    from mizu_core.repo.index import TermDictionary

    blocked = set().union(*(covered(repo, kind) for kind in kinds))
    if not blocked:
        return set()
    dictionary = TermDictionary(txn)
    ids: set[int] = set()
    for cid in blocked:
        message = read_message(txn, cid)
        for s, _, _ in message_triples(cid, message) if message is not None else ():
            term_id = dictionary.lookup(s)
            if term_id is not None:
                ids.add(term_id)
    return ids


def private_messages(repo: Repository) -> set[CID]:
    return covered(repo, "private")


def discarded(repo: Repository, blocks: Iterable[tuple[CID, bytes]]) -> set[CID]:
    """Which of these incoming blocks a discard filter covers, judged on the blocks alone
    (in a scratch in-memory store: nothing is written to the repository)."""
    if repo.config.get("filters.discard") is None:
        return set()
    from mizu_core.message import codec
    from mizu_core.message.cid import DAG_CBOR

    scratch = MemoryStore()
    with repo.store.reader() as txn:
        found = patterns(repo, txn, "discard")
    with scratch.writer() as stxn:
        ingest = Ingest(stxn)
        for cid, data in blocks:
            if cid.codec == DAG_CBOR:
                try:
                    message = codec.decode(data)
                except Exception:
                    continue  # the checks after this will refuse it
                if type(message) is dict:
                    ingest.store(Prepared(cid, data, message, ()), pin=None)
        ingest.finish()
        return subjects.matching_messages(found, TripleIndex(stxn))
