"""Every table of the store, and how its keys (and the values other tables point into) are
laid out: the one place that spells them. Nothing outside `repo/` names a table or builds
a key; it calls the module that owns the table (`blockstore`, `pins`, `arrivals`,
`subscription_tables`, `file_stats`, the index). man/mizu-repository-layout.5 gives the
bytes of each table, with examples.

A CID below is the binary CIDv1; numbers are unsigned big-endian, so that the bytewise
order of keys is their numeric order.
"""

from __future__ import annotations

import os
import struct

# -- the tables: key → value ------------------------------------------------------------

META = "meta"  # a counter's name (NEXT_SEQ, NEXT_TERM_ID, PREDICATE_COUNT + id) → 8-byte number
BLOCKS = "blocks"  # CID → a block not kept in MESSAGE_BLOCKS: files', received, old stores' messages
MESSAGES = "messages"  # a message's CID → its MessageInfo (ingest.py): SEQ, size, signers
LOG = "log"  # SEQ (arrival number) → the CID of the message that arrived then
MESSAGE_BLOCKS = "message_blocks"  # SEQ → the message's block (blockstore.py says why not by CID)
PINS = "pins"  # CID → why it is pinned: PIN_OWN or PIN_USER
TERM_IDS = "term_ids"  # a term's 16-byte BLAKE2b (index.term_hash) → its TERM_ID
TERMS = "terms"  # TERM_ID → the term's bytes (terms.py)
SPO = "spo"  # ID_KEY of (subject, predicate, object) ids → empty
POS = "pos"  # ID_KEY of (predicate, object, subject) ids → empty
OSP = "osp"  # ID_KEY of (object, subject, predicate) ids → empty
SUBS = "subs"  # a subscription's CID → its state, DAG-CBOR (feeds/subscriptions.py)
SUB_RECORDS = "sub_records"  # subscription_key(subscription, record) → empty
SUB_NODES = "sub_nodes"  # subscription_key(subscription, tree node) → the node's block
FILE_STATS = "file_stats"  # file_stat_key(path, layout) → FILE_STAT numbers + the file's root CID

TABLES = (
    META, BLOCKS, MESSAGES, LOG, MESSAGE_BLOCKS, PINS, TERM_IDS, TERMS, SPO, POS, OSP,
    SUBS, SUB_RECORDS, SUB_NODES, FILE_STATS,
)
INDEX_TABLES = (SPO, POS, OSP)  # every triple is one key in each

# -- arrival numbers: `log` and `message_blocks` keys, `meta`'s next_seq -------------------

SEQ = struct.Struct(">Q")  # a message's arrival number, from 1; also the start of its MessageInfo
NEXT_SEQ = b"next_seq"  # in META: the SEQ the next new message gets (absent: 1)


def seq_key(seq: int) -> bytes:
    """The `log` and `message_blocks` key of arrival number `seq`."""
    return SEQ.pack(seq)


def seq_of(key: bytes) -> int:
    """The arrival number of a `log` or `message_blocks` key (or of a MessageInfo's start)."""
    seq: int = SEQ.unpack_from(key)[0]
    return seq


# -- pins -------------------------------------------------------------------------------

PIN_OWN = b"own"  # published here
PIN_USER = b"user"  # pinned by hand, or added or imported

# -- the triple index and its dictionary -------------------------------------------------

TERM_ID = struct.Struct(">Q")  # a term's id: `terms`' key, `term_ids`' value, next_term_id
NEXT_TERM_ID = b"next_term_id"  # in META: the id the next new term gets (absent: 1)
ID_KEY = struct.Struct(">QQQ")  # a key of spo, pos or osp: three term ids in the table's order
unpack_ids = ID_KEY.unpack  # as a key reader's transform, the C reader does it itself
PREDICATE_COUNT = b"pcount:"  # in META, + a predicate's TERM_ID → how many triples have it
COUNT = struct.Struct(">Q")  # a PREDICATE_COUNT's value


def predicate_count_key(predicate_id: int) -> bytes:
    """The `meta` key of the number of triples with this predicate."""
    return PREDICATE_COUNT + TERM_ID.pack(predicate_id)


def counted_predicate(key: bytes) -> int:
    """The predicate id of a `predicate_count_key`."""
    predicate_id: int = TERM_ID.unpack_from(key, len(PREDICATE_COUNT))[0]
    return predicate_id


# -- subscriptions: their records and tree nodes are keyed under the subscription's CID ----

# Every subscription's CID has this length (a v1 dag-cbor sha2-256 CID: a message's), so the
# keys of sub_records and sub_nodes split there.
SUBSCRIPTION_CID_LEN = 36


def subscription_key(subscription: bytes, member: bytes) -> bytes:
    """The `sub_records` or `sub_nodes` key of a record or tree node (binary CIDs)."""
    return subscription + member


def member_of(key: bytes) -> bytes:
    """The record's or node's CID in a `subscription_key`."""
    return bytes(key[SUBSCRIPTION_CID_LEN:])


# -- file_stats: what `add` recorded of a file it read ------------------------------------

FILE_STAT = struct.Struct(">QQQQQ")  # size, mtime_ns, ctime_ns, inode, tsize; then the root CID


def file_stat_key(path: str | os.PathLike[str], raw_leaves: bool) -> bytes:
    """A file's `file_stats` key: its layout (L raw leaves, C classic) and absolute path."""
    return (b"L" if raw_leaves else b"C") + os.fsencode(path)
