"""Storing spooled records in batches, one write transaction each, bounded in messages
and in memory."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from mizu_core.publish.records import Record
from mizu_core.publish.spool import Spooled, in_input_order, records_of
from mizu_core.repo.index import TermCache
from mizu_core.repo.process_memory import private_memory

if TYPE_CHECKING:
    from mizu_core.repo.config import Config
    from mizu_core.repo.repository import Repository

# A write transaction stores at most `core.batch-size` messages (15,000): bigger ones
# rewrite the pages of the tables keyed by hash fewer times, for a little more memory
# (docs/performance.md). It ends sooner once the put has grown the process's memory by
# `core.batch-memory` (160 MiB: a large store may have a page to copy for each row a
# message adds). Their defaults and ranges are config.py's KEYS.
GROWTH = 16 << 20  # what a transaction must add to memory before it counts as growing it
# Messages stored at a time (`Ingest.store_many`), and between releases of the store's
# mapped pages: each write maps ~100 kB (the pages it reads and their fault-around
# neighbours), so release often (it is cheap). Fewer per slice made storing slower, more
# raised peak memory (docs/performance.md).
STORE_SLICE = 128


def batch_size(config: Config) -> int:
    size: int = config.get("core.batch-size")
    return size


def batch_memory(config: Config) -> int:
    memory: int = config.get("core.batch-memory")
    return memory


def _records(spooled: list[Spooled], total: int, batch_size: int) -> Iterator[Record]:
    if total > batch_size:
        # One CID range after another (in input order within each): the tables keyed by
        # CID (messages, pins) then take each batch's rows in a few of their pages rather
        # than all over them, which LMDB copies and writes back whole: faster, and less
        # memory, than input order (docs/performance.md).
        return records_of(sorted((p for s in spooled for p in s.parts), key=lambda p: p.cid_range))
    return (r for s in spooled for r in in_input_order(s))  # one batch: in input order


def store_segments(repo: Repository, segments: Iterable[tuple[list[Spooled], int]], count: int) -> tuple[int, int]:
    """Store the spooled records, segment by segment (each holds how many records it
    says), in batches that never span two segments; `count` records in all. Returns how
    many messages were new, and how many triples they added."""
    size = batch_size(repo.config)
    added = triples = 0
    # Each batch starts knowing the terms the committed ones stored (and claimed: ~6 a
    # message is typical).
    terms = TermCache(claims=8 * count)
    ceiling = private_memory() + batch_memory(repo.config)
    limit = size  # messages a batch may take
    for spooled, total in segments:
        records = _records(spooled, total, size)
        stored = 0
        while stored < total:
            with repo.ingesting(terms) as ingest:
                first, start = stored, private_memory()
                batch_end = min(total, stored + limit)
                while stored < batch_end:
                    part = list(itertools.islice(records, min(batch_end - stored, STORE_SLICE)))
                    assert part, "the spool holds fewer records than were prepared"
                    ingest.store_many(part)
                    stored += len(part)
                    # Index pages read while inserting stay mapped, and count as resident
                    # memory, until released (safe mid-transaction: writes go to private
                    # copies, never through the map).
                    repo.release_pages()
                    # LMDB keeps the pages a transaction changed for the next to reuse, so
                    # memory grows only while this one changes more than any before it:
                    # past the budget, end the batch then, and let the next ones take as
                    # many messages as this one did, which mostly fit in those pages.
                    if (now := private_memory()) > ceiling and now > start + GROWTH:
                        limit = max(STORE_SLICE, stored - first)
                        break
            added += ingest.added
            triples += ingest.triples
    return added, triples
