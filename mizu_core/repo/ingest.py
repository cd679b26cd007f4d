"""The one path into the store: prepare (validate, sign, encode), then store and index.

Preparing needs no lock, so a slow input never holds the store's write lock; an `Ingest`
lives inside one write transaction, so each batch lands whole or not at all. Local
publishes and blocks received from peers or CAR files all pass through here.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mizu_core.errors import InvalidMessage, StoreError
from mizu_core.message import codec
from mizu_core.message.cid import CID, DAG_CBOR
from mizu_core.message.signatures import sign_and_encode
from mizu_core.message.triples import triple_terms
from mizu_core.message.validate import SchemaLookup, validate_message
from mizu_core.repo import arrivals, blockstore
from mizu_core.repo.index import IndexWriter, TermCache, TermDictionary, put_sorted
from mizu_core.repo.kv import Txn
from mizu_core.repo.tables import LOG, MESSAGE_BLOCKS, MESSAGES, META, NEXT_SEQ, PIN_OWN, PINS, SEQ
from mizu_core.terms import Term

if TYPE_CHECKING:
    from mizu_core.message.keys import PrivateKey

_INFO = struct.Struct(">QI")  # arrival seq (a SEQ), block size; then signers, each length-prefixed
_LEN = struct.Struct(">H")


@dataclass(frozen=True)
class MessageInfo:
    """What the store records about a message beside its block."""

    cid: CID
    seq: int
    size: int
    signers: tuple[bytes, ...]  # marshalled public keys that signed the root

    def encode(self) -> bytes:
        return _info(self.seq, self.size, self.signers)

    @classmethod
    def decode(cls, cid: CID, raw: bytes) -> MessageInfo:
        seq, size = _INFO.unpack_from(raw)
        signers, pos = [], _INFO.size
        while pos < len(raw):
            (length,) = _LEN.unpack_from(raw, pos)
            signers.append(bytes(raw[pos + 2 : pos + 2 + length]))
            pos += 2 + length
        return cls(cid, seq, size, tuple(signers))


def _info(seq: int, size: int, signers: tuple[bytes, ...]) -> bytes:
    """A `MessageInfo`'s stored form."""
    return _INFO.pack(seq, size) + b"".join(_LEN.pack(len(k)) + k for k in signers)


def read_message(txn: Txn, cid: CID) -> dict[str, Any] | None:
    data = blockstore.get(txn, cid.raw)
    if data is None or cid.codec != DAG_CBOR:
        return None
    value = codec.decode(bytes(data))
    return value if type(value) is dict else None


@dataclass(frozen=True, slots=True)
class Prepared:
    """A message validated (and signed) outside any transaction, ready to store."""

    cid: CID
    data: bytes
    message: dict[str, Any]
    signers: tuple[bytes, ...]


def prepare(
    message: Any, signer: PrivateKey | None = None, schema_lookup: SchemaLookup | None = None
) -> Prepared:
    """Validate `message` (an IPLD dict), sign it if asked, and encode it."""
    signers = validate_message(message, schema_lookup)
    return seal(message, tuple(k.marshal() for k in signers), signer)


def seal(
    message: dict[str, Any], signers: tuple[bytes, ...], signer: PrivateKey | None,
    encoded: bytes | None = None,
) -> Prepared:
    """A validated message (its signatures' keys `signers`, marshalled) signed if asked,
    and encoded (`encoded`: its encoding unsigned, if known)."""
    if signer is not None:
        message, data = sign_and_encode(message, signer, encoded)
        signers = (*signers, signer.public_key.marshal())
    else:
        data = encoded or codec.encode(message)
    _check_size(data)
    return Prepared(CID.for_block(data), data, message, signers)


def prepare_block(
    cid: CID, data: bytes, schema_lookup: SchemaLookup | None = None,
    missing_schemas: list[CID] | None = None,
) -> Prepared:
    """Check a message block that came from elsewhere: re-hash, decode strictly, validate
    (`validate_message` says what `missing_schemas` does)."""
    if cid.codec != DAG_CBOR:
        raise InvalidMessage(f"{cid} is not a dag-cbor message")
    if not cid.matches(data):
        raise InvalidMessage(f"block does not hash to {cid}")
    _check_size(data)
    message = codec.decode(data)
    signers = validate_message(message, schema_lookup, missing_schemas)
    return Prepared(cid.to_v1(), data, message, tuple(k.marshal() for k in signers))


def _check_size(data: bytes) -> None:
    if len(data) > codec.MAX_MESSAGE_SIZE:
        raise InvalidMessage(
            f"message is {len(data)} bytes encoded, over the 1 MiB limit",
            hint="put large content in files (mizu add) and link them",
        )


class Ingest:
    """Stores prepared messages within the write transaction `txn`.

    Rows other than blocks are queued and written sorted by `finish` (LMDB inserts sorted
    keys much faster than the same keys one at a time); nothing reads them back before."""

    def __init__(
        self, txn: Txn, release: Callable[[], None] | None = None, terms: TermCache | None = None
    ) -> None:
        """`terms`: term ids learnt by the earlier, committed transactions of the same
        writer (never another's: a write that fails gives its ids out again)."""
        self.txn = txn
        self.release = release
        self.dictionary = TermDictionary(txn, terms)
        self.index = IndexWriter(txn, self.dictionary, release)
        self._next_seq = arrivals.next_seq(txn)
        self._messages: dict[bytes, bytes] = {}  # cid → its MessageInfo, encoded
        self._pins: dict[bytes, bytes] = {}
        self.added = 0
        self.triples = 0

    def store(self, prepared: Prepared, pin: bytes | None = PIN_OWN) -> None:
        """Store the block, its metadata and log entry, index its triples; pin it if asked."""
        record = (prepared.cid.raw, prepared.data, prepared.signers,
                  triple_terms(prepared.cid, prepared.message))
        self.store_many([record], pin)

    def store_many(
        self, records: list[tuple[bytes, bytes, tuple[bytes, ...], list[Term]]],
        pin: bytes | None = PIN_OWN,
    ) -> None:
        """`store` of many records: (binary CID, block, signers, the terms of its triples as
        `triple_terms` gives them: mapped already, maybe on another core). Which are stored
        already is looked up in one sorted run, and the new ones' blocks appended to
        `message_blocks` (blockstore.py says why)."""
        stored = {key for key, _ in self.txn.get_many(MESSAGES, sorted(r[0] for r in records))}
        new_blocks, term_lists = [], []
        for key, data, signers, terms in records:
            if pin is not None:
                self._pins.setdefault(key, pin)
            if key in stored or key in self._messages:
                continue
            new_blocks.append((SEQ.pack(self._next_seq), data))
            term_lists.append(terms)
            self._messages[key] = _info(self._next_seq, len(data), signers)
            self._next_seq += 1
        self.triples += self.index.add_terms(term_lists)
        self.added += len(new_blocks)
        if put_sorted(self.txn, MESSAGE_BLOCKS, new_blocks, self.release, append=True) != len(new_blocks):
            raise StoreError("the message blocks hold entries above next_seq")

    def finish(self) -> None:
        """Write the queued rows, index keys and counters; call before the transaction
        commits."""
        txn, release = self.txn, self.release
        if self._messages:
            first = self._next_seq - len(self._messages)
            log = [(SEQ.pack(seq), key) for seq, key in enumerate(self._messages, first)]
            if put_sorted(txn, LOG, log, release, append=True) != len(log):
                raise StoreError("the log holds entries above next_seq")
            put_sorted(txn, MESSAGES, sorted(self._messages.items()), release)
        if self._pins:
            put_sorted(txn, PINS, sorted(self._pins.items()), release, overwrite=False)
        self._messages, self._pins = {}, {}
        self.index.flush()
        txn.put(META, NEXT_SEQ, SEQ.pack(self._next_seq))
