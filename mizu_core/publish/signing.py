"""Signing an input validated unsigned, in segments, while the store runs.

Ed25519 and RSA give the same bytes the same signature, so a put signing with them
validates the whole input first (`validation.py`: nothing is stored if a message is
invalid), and only then signs the spooled records, in forked workers, while this process
stores the segments signed before.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from mizu_core.message import codec
from mizu_core.message.cid import CID
from mizu_core.publish.records import Record
from mizu_core.publish.spool import Spool, Spooled, in_input_order
from mizu_core.publish.stages import Stage, prepare_all
from mizu_core.repo.ingest import Prepared, seal

if TYPE_CHECKING:
    from mizu_core.message.keys import PrivateKey

# The first segment is one batch, the later ones this many batches each (stored one CID
# range after another).
SIGN_AHEAD = 2


def signed(record: Record, key: PrivateKey | None) -> Prepared:
    """A validated message's unsigned record (`record(…, to_sign=True)`) signed by `key`."""
    _cid, data, signers, _terms = record
    return seal(codec.decode_trusted(data), signers, key, data)


class Signing(Stage):
    """Sign each record with `key` (in workers, as `PrivateKey.for_many` gives it)."""

    def __init__(self, key: PrivateKey) -> None:
        self._key = key
        self._worker_key: PrivateKey | None = None

    def in_process(self, item: Any) -> Prepared:
        return signed(item, self._key)

    def in_worker(self, item: Any) -> Prepared:
        if self._worker_key is None:  # made by each worker, the only ones that need it
            self._worker_key = self._key.for_many()
        return signed(item, self._worker_key)


def signed_segments(
    spooled: list[Spooled], key: PrivateKey, spool: Spool, cids: list[CID], batch_size: int
) -> Generator[tuple[list[Spooled], int], None, None]:
    """The validated messages of `spooled` signed by `key` in forked workers, in segments
    (with how many records each holds) for `batches.store_segments`: the first of one
    batch, the next of SIGN_AHEAD batches each, the last of what is left (so every batch
    but the last is whole). All the signing is queued at once and the workers run niced,
    so they sign the next segments on the core the store leaves idle while it stores this
    one. Their CIDs go to `cids`, in input order."""
    segment: list[Spooled] = []
    held, limit = 0, batch_size
    signing = Signing(key)
    with contextlib.closing(prepare_all(spooled, signing, {}, spool, ahead=len(spooled), nice=10)) as chunks:
        for chunk in chunks:
            for outcome in chunk.outcomes:  # all validated already: an error here is a bug
                if not isinstance(outcome, CID):
                    raise outcome
            cids += chunk.outcomes  # type: ignore[arg-type]
            part = chunk.spooled
            while held + len(part.order) >= limit:  # the segment ends in this part: split it
                records = list(in_input_order(part))
                cut = limit - held
                yield [*segment, spool.write(records[:cut])], limit
                part = spool.write(records[cut:])
                segment, held, limit = [], 0, SIGN_AHEAD * batch_size
            if part.order:
                segment.append(part)
                held += len(part.order)
    if segment:
        yield segment, held
