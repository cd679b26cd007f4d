"""`publish`: messages validated, signed, mapped to triples and stored.

All the input is prepared first (`stages.py`, on every core past a few thousand
messages; the records wait in a `Spool`), then stored in batches (`batches.py`); a
signed put whose key signs reproducibly signs while it stores (`signing.py`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, overload

from mizu_core.message.cid import CID
from mizu_core.publish.batches import batch_memory, batch_size, store_segments
from mizu_core.publish.inputs import MessageText
from mizu_core.publish.signing import signed_segments
from mizu_core.publish.spool import Spool, Spooled
from mizu_core.publish.stages import Schemas, prepare_all
from mizu_core.publish.validation import Validating

if TYPE_CHECKING:
    from mizu_core.message.keys import PrivateKey
    from mizu_core.repo.repository import Repository


@dataclass(frozen=True)
class Rejected:
    where: str
    reason: str


@dataclass(frozen=True)
class PublishResult:
    cids: tuple[CID, ...]
    rejected: tuple[Rejected, ...]
    added: int  # messages new to this repository
    triples: int


@overload
def publish(
    repo: Repository, message: Mapping[str, Any] | str | bytes | MessageText, /, *,
    sign: bool = True, signer: PrivateKey | None = None,
) -> CID: ...


@overload
def publish(
    repo: Repository, messages: list[Any] | Iterator[Any], /, *,
    sign: bool = True, signer: PrivateKey | None = None, skip_invalid: bool = False,
) -> PublishResult: ...


def publish(
    repo: Repository, messages: Any, /, *,
    sign: bool = True, signer: PrivateKey | None = None, skip_invalid: bool = False,
) -> CID | PublishResult:
    """Publish one message (a dict, or JSON text) into `repo` and return its CID; or
    publish a list or an iterator of them, `Lines` blocks of NDJSON among them, and return
    what was stored. Signed with `signer`, else the repository's identity, unless
    `sign=False`. (`Repository.publish` is this.)"""
    if isinstance(messages, (Mapping, str, bytes, MessageText)):
        if isinstance(messages, (str, bytes)):
            messages = MessageText(messages, "message")
        return publish_all(repo, [messages], sign, signer, False).cids[0]
    return publish_all(repo, messages, sign, signer, skip_invalid)


def publish_all(
    repo: Repository, messages: Iterable[Any], sign: bool, signer: PrivateKey | None, skip_invalid: bool
) -> PublishResult:
    """Publish messages: all are prepared first, then stored in batches.

    Items are IPLD dicts, `MessageText` whose errors name where the text came from, or
    `Lines` blocks of NDJSON (`inputs.read_lines`).
    Nothing is stored if any item is invalid (unless `skip_invalid`, which reports and
    skips it). Storing then takes one write transaction per `core.batch-size` messages,
    so after a crash each batch is there wholly or not at all, and publishing the same
    input again completes it; an input of more than one batch is stored one CID range
    after another (`batches.py` says why), and so arrives in that order (when signed,
    segment by segment, see `signing.signed_segments`).
    """
    key = (signer or repo.identity) if sign else None
    batch_size(repo.config)  # a bad setting fails before the work
    batch_memory(repo.config)
    cids: list[CID] = []
    rejected: list[Rejected] = []
    schemas: Schemas = {}  # schema messages published in this input
    validating = Validating(repo, key, schemas)
    spooled: list[Spooled] = []  # each task's records
    with Spool() as spool, _without_gc():
        with contextlib.closing(prepare_all(messages, validating, schemas, spool)) as chunks:
            for chunk in chunks:
                spooled.append(chunk.spooled)
                if chunk.valid:
                    cids += chunk.outcomes  # type: ignore[arg-type]
                    continue
                for item, outcome in zip(chunk.items(), chunk.outcomes, strict=True):
                    if isinstance(outcome, CID):
                        cids.append(outcome)
                        continue
                    n = len(cids) + len(rejected) + 1
                    where = item.where if type(item) is MessageText else f"message {n}"
                    if not skip_invalid:
                        raise type(outcome)(f"{where}: {outcome}", outcome.hint) from None
                    rejected.append(Rejected(where, str(outcome)))
        count = len(cids)
        if validating.sign_later is None:
            added, triples = store_segments(repo, [(spooled, count)], count)
        else:
            cids = []
            segments = signed_segments(spooled, validating.sign_later, spool, cids, batch_size(repo.config))
            with contextlib.closing(segments):  # ends the workers if storing fails
                added, triples = store_segments(repo, segments, count)
    return PublishResult(tuple(cids), tuple(rejected), added, triples)


@contextmanager
def _without_gc() -> Iterator[None]:
    """Publishing makes millions of objects and no cycles: collections would only cost."""
    import gc

    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()
