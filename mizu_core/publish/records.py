"""A prepared message as the store takes it, and the CID ranges a large input is stored by."""

from __future__ import annotations

from mizu_core.message.triples import triple_terms
from mizu_core.repo.ingest import Prepared
from mizu_core.terms import Term

# What `Ingest.store_many` takes of one message, spooled between preparing and storing:
# (cid, data, signers, terms): its binary CID, its encoding, the keys of its `$signatures`
# (marshalled), and its triples' terms as `triple_terms` gives them (none while it waits
# to be signed). Built by `record` alone, and read by unpacking it with those names. A
# plain tuple, not a NamedTuple: pickle writes and reads a tuple subclass through Python
# calls, which cost ~1.1 µs a record to spool and read back (~0.15 s of CPU a 100,000-
# message put, twice that signed), for names that unpacking gives as well.
Record = tuple[bytes, bytes, tuple[bytes, ...], list[Term]]


def record(prepared: Prepared, *, to_sign: bool = False) -> Record:
    """The record of a prepared message; `to_sign`: of a message to be signed later, which
    maps to triples once signed (`signing.py`)."""
    cid = prepared.cid
    return cid.raw, prepared.data, prepared.signers, [] if to_sign else triple_terms(cid, prepared.message)


RANGES = 16  # CID ranges a large input is stored by, one after another (batches.py says why)


def cid_range(raw: bytes) -> int:
    """Which of the RANGES a binary CID falls in: the top bits of its digest's first byte
    (after the 4-byte CIDv1 dag-cbor sha2-256 prefix that every message CID has)."""
    return raw[4] >> 4 if len(raw) > 4 else 0
