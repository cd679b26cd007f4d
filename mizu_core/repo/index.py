"""The triple index: dictionary-encoded terms and three orderings of every triple.

Terms get 8-byte ids (`term_ids`: 16-byte BLAKE2b of the term → id, so long literals never
hit LMDB's key limit; `terms`: id → term). Each triple is stored as three 24-byte keys in
`spo`, `pos` and `osp`: any pattern with any bound positions is one prefix range scan.
"""

from __future__ import annotations

import hashlib
import itertools
import operator
import struct
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TypeVar

from mizu_core.errors import StoreError
from mizu_core.repo.kv import Txn
from mizu_core.repo.tables import (
    COUNT,
    ID_KEY,
    META,
    NEXT_TERM_ID,
    OSP,
    POS,
    SPO,
    TERM_ID,
    TERM_IDS,
    TERMS,
    predicate_count_key,
    unpack_ids,
)
from mizu_core.speedups import native
from mizu_core.terms import Term

Triple = tuple[Term, Term, Term]
S = TypeVar("S", list[tuple[bytes, bytes]], list[bytes], bytes)  # what `_slices` slices

Rows = Callable[[bytes], Iterable[tuple[int, int, int]]]

ROW = struct.Struct("=QQQ")  # an id triple as the index writer queues it: native uint64s
_KEY, _VALUE = operator.itemgetter(0), operator.itemgetter(1)
SHORT_SCAN = 64  # keys a scan reads at once before it streams the rest


def _term_hash(term: Term) -> bytes:
    """A term's key in `term_ids`. `_speedups.term_hash` does the same in C."""
    return hashlib.blake2b(term, digest_size=16).digest()


def _term_claims(new: dict[Term, int]) -> list[tuple[bytes, bytes]]:
    """The `term_ids` rows of new terms, sorted. `_speedups.term_claims` does the same in C."""
    return sorted((_term_hash(term), TERM_ID.pack(term_id)) for term, term_id in new.items())


def _bloom_probe(bloom: bytearray, claims: list[tuple[bytes, bytes]]) -> list[int]:
    """Indexes of the claims whose hash `bloom` may hold; it then holds them all: two bits
    each, from the hash's two halves (`_speedups.bloom_probe`)."""
    mask, maybe = len(bloom) * 8 - 1, []
    for i, (key, _) in enumerate(claims):
        seen = True
        for half in (key[:8], key[8:]):
            bit = int.from_bytes(half, "little") & mask
            seen = seen and bool(bloom[bit >> 3] >> (bit & 7) & 1)
            bloom[bit >> 3] |= 1 << (bit & 7)
        if seen:
            maybe.append(i)
    return maybe


def _term_rows(new: dict[Term, int], skip: dict[int, int]) -> list[tuple[bytes, bytes]]:
    """The `terms` rows of new terms, but for the ids in `skip` (`_speedups.term_rows`)."""
    return [(TERM_ID.pack(term_id), term) for term, term_id in new.items() if term_id not in skip]


term_hash = native.term_hash if native is not None else _term_hash
term_claims = native.term_claims if native is not None else _term_claims
term_rows = native.term_rows if native is not None else _term_rows
bloom_probe = native.bloom_probe if native is not None else _bloom_probe


RELEASE_SLICE = 1_000  # sorted writes between two releases of the store's mapped pages


def put_sorted(
    txn: Txn, table: str, items: list[tuple[bytes, bytes]], release: Callable[[], None] | None,
    overwrite: bool = True, append: bool = False,
) -> int:
    """`put_many` of sorted items in slices, calling `release` after each to let go of the
    pages it read: sorted writes walk the whole tree, whose pages would otherwise all stay
    mapped, counted in resident memory. Returns how many were stored."""
    return sum(txn.put_many(table, part, overwrite, append) for part in _slices(items, release))


def put_keys(txn: Txn, table: str, keys: bytes, release: Callable[[], None] | None) -> None:
    """`put_sorted` of index keys packed end to end (`index_keys`), with empty values."""
    for part in _slices(keys, release, RELEASE_SLICE * ID_KEY.size):
        txn.put_many(table, key_pairs(part))


def get_sorted(
    txn: Txn, table: str, keys: list[bytes], release: Callable[[], None] | None
) -> list[tuple[bytes, bytes]]:
    """`get_many` of sorted keys in slices, releasing the pages read as `put_sorted` does."""
    return [found for part in _slices(keys, release) for found in txn.get_many(table, part)]


def _slices(
    items: S, release: Callable[[], None] | None, size: int = RELEASE_SLICE
) -> Iterator[S]:
    """`items` `size` at a time, calling `release` after each slice is used."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
        if release is not None:
            release()


class TermCache:
    """Term ↔ id pairs read from committed snapshots, shared by a repository's readers.

    Safe across transactions because a committed id is permanent: ids are never reused and
    gc never drops terms. Writers keep caches of their own, since an aborted write's ids
    are given out again.
    """

    def __init__(self, claims: int = 0) -> None:
        """`claims`: about how many new terms a writer using this cache will claim."""
        self.ids: dict[Term, int] = {}
        self.terms: dict[int, Term] = {}
        self.derived: dict[int, object] = {}  # id → a value made from its term (query output)
        self._claims = claims
        self._claimed: bytearray | None = None

    @property
    def claimed(self) -> bytearray:
        """The hashes of the terms a writer claimed, in a bloom filter: most terms that turn
        out stored already when claimed (see `TermDictionary.settle`) are among them. 16
        bits a claim expected (two probes: ~1.4% false positives), 128 KiB to 16 MiB."""
        if self._claimed is None:
            size = 1 << 17
            while size < self._claims * 2 and size < 1 << 24:
                size <<= 1
            self._claimed = bytearray(size)
        return self._claimed


class TermDictionary:
    """Term ↔ id within one transaction (ids are never reused, so caching is safe).

    The caches are emptied when they reach CACHE_LIMIT entries, and keep no term longer
    than CACHED_TERM_SIZE bytes (those are mostly one-off texts), so a long scan or a large
    batch runs in bounded memory (a few tens of MB); everything cached is also in the store.
    """

    CACHE_LIMIT = 1 << 16
    CACHED_TERM_SIZE = 256

    def __init__(self, txn: Txn, cache: TermCache | None = None) -> None:
        self.txn = txn
        cache = cache or TermCache()
        self._ids = cache.ids
        self._terms = cache.terms
        self.derived = cache.derived
        self._cache = cache
        self._read_term = txn.getter(TERMS)
        self._next: int | None = None
        # Terms given ids but not written yet (see `settle`): their ids run from
        # _new_from up, in the order of _new_terms.
        self._new: dict[Term, int] = {}
        self._new_terms: list[Term] = []
        self._new_from = 0

    def lookup(self, term: Term) -> int | None:
        cached = self._ids.get(term) or self._new.get(term)
        if cached is not None:
            return cached
        raw = self.txn.get(TERM_IDS, term_hash(term))
        if raw is None:
            return None
        term_id: int = TERM_ID.unpack(raw)[0]
        self._remember_id(term, term_id)
        return term_id

    def _remember_id(self, term: Term, term_id: int) -> None:
        if len(term) > self.CACHED_TERM_SIZE:
            return
        if len(self._ids) >= self.CACHE_LIMIT:
            self._ids.clear()
        self._ids[term] = term_id

    def intern(self, term: Term) -> int:
        """The term's id; a term not cached gets a new id at once, and `settle` later
        finds the few that the store already had."""
        cached = self._ids.get(term) or self._new.get(term)
        if cached is not None:
            return cached
        term_id = self._next_id()
        self._next = term_id + 1
        if not self._new:
            self._new_from = term_id
        self._new[term] = term_id
        self._new_terms.append(term)
        self._remember_id(term, term_id)
        return term_id

    def _next_id(self) -> int:
        if self._next is None:
            raw = self.txn.get(META, NEXT_TERM_ID)
            self._next = TERM_ID.unpack(raw)[0] if raw else 1
        return self._next

    def intern_terms(self, term_lists: list[list[Term]], out: bytearray) -> None:
        """Append to `out` (`ROW`s) the ids of the triples whose terms each of `term_lists`
        lists in turn (s, p, o, s, p, o, …: no tuple per triple to make, pickle and free),
        interning them."""
        if native is None:
            intern, known = self.intern, self._ids.get  # the hot path: most terms are cached
            for terms in term_lists:
                for s, p, o in zip(*[iter(terms)] * 3, strict=True):
                    out += ROW.pack(known(s) or intern(s), known(p) or intern(p), known(o) or intern(o))
            return
        if not self._new:
            self._new_from = self._next_id()
        self._next = native.intern_terms(
            term_lists, out, self._ids, self._new, self._new_terms, self._next_id(),
            self.CACHE_LIMIT, self.CACHED_TERM_SIZE,
        )

    def settle(self, release: Callable[[], None] | None = None) -> dict[int, int]:
        """Write the terms given ids since the last call, in two sorted runs (LMDB writes
        sorted keys several times faster than the same keys one at a time). Returns the
        ids to replace: new id → the id the store already had for that term (rare, since
        most known terms are cached, but ids must stay unique per term). `release` as in
        `put_sorted`."""
        new, new_terms, first = self._new, self._new_terms, self._new_from
        self._new, self._new_terms = {}, []
        if not new:
            return {}
        replaced: dict[int, int] = {}
        claims = term_claims(new)
        # A term this writer claimed before (its hash is in the bloom filter) may be in the
        # store though the cache forgot it: those are looked up first, so that the claims
        # need not all be read back to find them.
        probed = bloom_probe(self._cache.claimed, claims)
        found = dict(get_sorted(self.txn, TERM_IDS, [claims[i][0] for i in probed], release))
        written = put_sorted(self.txn, TERM_IDS, claims, release, overwrite=False)
        if written == len(claims) - len(found):
            known = [(claims[i][1], found[claims[i][0]]) for i in probed if claims[i][0] in found]
        else:  # another writer stored some too (an earlier put): read all back, in C loops
            stored = get_sorted(self.txn, TERM_IDS, list(map(_KEY, claims)), release)
            assert len(stored) == len(claims)
            differ = map(operator.ne, map(_VALUE, claims), map(_VALUE, stored))
            pairs = itertools.compress(zip(claims, stored, strict=True), differ)
            known = [(claimed, value) for (_, claimed), (_, value) in pairs]
        for claimed, value in known:
            term_id, stored_id = TERM_ID.unpack(claimed)[0], TERM_ID.unpack(value)[0]
            replaced[term_id] = stored_id
            self._remember_id(new_terms[term_id - first], stored_id)  # ids follow new_terms
        # Ids were given in increasing order, above every id stored: an append.
        rows = term_rows(new, replaced)
        if put_sorted(self.txn, TERMS, rows, release, append=True) != len(rows):
            raise StoreError("the term dictionary holds ids above next_term_id")
        return replaced

    def term(self, term_id: int) -> Term:
        cached = self._terms.get(term_id)
        if cached is None and 0 <= term_id - self._new_from < len(self._new_terms):
            cached = self._new_terms[term_id - self._new_from]  # given an id, not written yet
        if cached is None:
            raw = self._read_term(TERM_ID.pack(term_id))
            if raw is None:
                raise StoreError(f"term id {term_id} is missing from the dictionary")
            cached = bytes(raw)
            if len(cached) <= self.CACHED_TERM_SIZE:
                if len(self._terms) >= self.CACHE_LIMIT:
                    self._terms.clear()
                self._terms[term_id] = cached
        return cached

    def flush(self) -> None:
        """Write the id counter (after `IndexWriter.flush` has settled the new terms)."""
        if self._next is not None:
            self.txn.put(META, NEXT_TERM_ID, TERM_ID.pack(self._next))


class IndexWriter:
    """Buffers index keys and writes them sorted (LMDB inserts sorted keys much faster)."""

    FLUSH_AT = 50_000

    def __init__(self, txn: Txn, dictionary: TermDictionary,
                 release: Callable[[], None] | None = None) -> None:
        self.txn = txn
        self.dictionary = dictionary
        self.release = release  # lets go of mapped store pages between big writes
        self._pending = bytearray()  # id triples (`ROW`s) to write at the next flush

    def add(self, triples: Iterable[Triple]) -> int:
        return self.add_terms([list(itertools.chain.from_iterable(triples))])

    def add_terms(self, term_lists: list[list[Term]]) -> int:
        """`add` of the triples whose terms each of `term_lists` lists in turn (s, p, o, s,
        p, o, …: the records of many messages at once)."""
        before = len(self._pending)
        self.dictionary.intern_terms(term_lists, self._pending)
        n = (len(self._pending) - before) // ROW.size
        if len(self._pending) >= self.FLUSH_AT * ROW.size:
            self.flush()
        return n

    def remove(self, triples: Iterable[Triple]) -> int:
        lookup = self.dictionary.lookup
        removed: Counter[int] = Counter()
        for s, p, o in triples:
            si, pi, oi = lookup(s), lookup(p), lookup(o)
            if si is None or pi is None or oi is None:
                continue
            if self.txn.delete(SPO, ID_KEY.pack(si, pi, oi)):
                removed[pi] += 1
            self.txn.delete(POS, ID_KEY.pack(pi, oi, si))
            self.txn.delete(OSP, ID_KEY.pack(oi, si, pi))
        self._count_predicates(removed, -1)
        return sum(removed.values())

    def flush(self) -> None:
        pending, self._pending = self._pending, bytearray()
        replaced = self.dictionary.settle(self.release)
        if pending:
            *keys, counts = index_keys(pending, replaced)
            for table, packed in zip((SPO, POS, OSP), keys, strict=True):
                put_keys(self.txn, table, packed, self.release)
            self._count_predicates(counts, 1)
        self.dictionary.flush()

    def _count_predicates(self, counts: Mapping[int, int], sign: int) -> None:
        """Keep the per-predicate triple counts the planner reads (statistics in `meta`)."""
        for predicate, n in counts.items():
            key = predicate_count_key(predicate)
            raw = self.txn.get(META, key)
            total = (COUNT.unpack(raw)[0] if raw else 0) + sign * n
            if total > 0:
                self.txn.put(META, key, COUNT.pack(total))
            else:
                self.txn.delete(META, key)


def _index_keys(
    rows: bytes | bytearray, replaced: dict[int, int]
) -> tuple[bytes, bytes, bytes, dict[int, int]]:
    """The keys of id triples (`ROW`s) for spo, pos and osp, each table's sorted (LMDB
    inserts sorted keys much faster) and packed end to end (no object per key until
    `put_keys` writes it), their ids mapped through `replaced`; and how many triples each
    predicate has. `_speedups.index_keys` does the same in C."""
    triples = list(ROW.iter_unpack(rows))
    if replaced:
        get = replaced.get
        triples = [(get(s, s), get(p, p), get(o, o)) for s, p, o in triples]
    pack = ID_KEY.pack
    spo, pos, osp = (
        b"".join(sorted(pack(t[a], t[b], t[c]) for t in triples))
        for a, b, c in ((0, 1, 2), (1, 2, 0), (2, 0, 1))
    )
    return spo, pos, osp, dict(Counter(t[1] for t in triples))


def _key_pairs(keys: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(key, b"") for each index key packed in `keys` (`_speedups.KeyPairs`)."""
    return ((keys[i : i + ID_KEY.size], b"") for i in range(0, len(keys), ID_KEY.size))


index_keys = native.index_keys if native is not None else _index_keys
key_pairs = native.KeyPairs if native is not None else _key_pairs


class TripleIndex:
    """Read side: `match(s, p, o)` with None as a wildcard, one range scan per call."""

    def __init__(self, txn: Txn, cache: TermCache | None = None) -> None:
        self.txn = txn
        self.dictionary = TermDictionary(txn, cache)
        self._rows: dict[str, Rows] = {}

    def rows(self, table: str) -> Rows:
        """rows(prefix): the keys of `table` under `prefix` as id triples in the table's
        order; a list for a short scan (most scans of a query), else a stream."""
        found = self._rows.get(table)
        if found is None:
            found = self._rows[table] = self._build_rows(table)
        return found

    def _build_rows(self, table: str) -> Rows:
        return self.txn.key_reader(table, unpack_ids, SHORT_SCAN)

    def match_ids(
        self, s: int | None, p: int | None, o: int | None
    ) -> Iterable[tuple[int, int, int]]:
        """Id triples (s, p, o) matching the bound ids."""
        table, order = LAYOUT[(s is not None, p is not None, o is not None)]
        spo = (s, p, o)
        prefix = b"".join(TERM_ID.pack(spo[i]) for i in order if spo[i] is not None)
        found = self.rows(table)(prefix)
        to_spo = _TO_SPO[table]
        if to_spo is None:
            return found
        if type(found) is list:
            return [to_spo(*r) for r in found]
        return itertools.starmap(to_spo, found)

    def match(
        self, s: Term | None = None, p: Term | None = None, o: Term | None = None
    ) -> Iterator[Triple]:
        ids: list[int | None] = []
        for bound in (s, p, o):
            term_id = None if bound is None else self.dictionary.lookup(bound)
            if bound is not None and term_id is None:
                return  # a term never seen matches nothing
            ids.append(term_id)
        decode = self.dictionary.term
        for si, pi, oi in self.match_ids(*ids):
            yield decode(si), decode(pi), decode(oi)

    def count(self) -> int:
        return self.txn.count(SPO)

    def hiding(self, subjects: set[int]) -> TripleIndex:
        """This index without the triples of these subjects (a block filter's messages)."""
        if not subjects:
            return self
        hidden = HidingIndex(self.txn)
        hidden.dictionary = self.dictionary
        hidden.hidden = subjects
        return hidden

    def predicate_count(self, predicate_id: int) -> int:
        raw = self.txn.get(META, predicate_count_key(predicate_id))
        return COUNT.unpack(raw)[0] if raw else 0


class HidingIndex(TripleIndex):
    hidden: set[int]

    def _build_rows(self, table: str) -> Rows:
        rows, hidden, subject = super()._build_rows(table), self.hidden, LAYOUT_SUBJECT[table]

        def visible(prefix: bytes) -> Iterable[tuple[int, int, int]]:
            found = rows(prefix)
            if type(found) is list:
                return [t for t in found if t[subject] not in hidden]
            return (t for t in found if t[subject] not in hidden)

        return visible


def _from_pos(p: int, o: int, s: int) -> tuple[int, int, int]:
    return s, p, o


def _from_osp(o: int, s: int, p: int) -> tuple[int, int, int]:
    return s, p, o


# Which table answers a pattern shape (s, p, o bound?), and the slots (0 s, 1 p, 2 o) its
# keys hold, in order: the bound ones first, so they form the prefix scanned.
LAYOUT: dict[tuple[bool, bool, bool], tuple[str, tuple[int, ...]]] = {
    (True, True, True): (SPO, (0, 1, 2)),
    (True, True, False): (SPO, (0, 1, 2)),
    (True, False, True): (OSP, (2, 0, 1)),
    (True, False, False): (SPO, (0, 1, 2)),
    (False, True, True): (POS, (1, 2, 0)),
    (False, True, False): (POS, (1, 2, 0)),
    (False, False, True): (OSP, (2, 0, 1)),
    (False, False, False): (SPO, (0, 1, 2)),
}
LAYOUT_SUBJECT = {SPO: 0, POS: 2, OSP: 1}  # where a table's keys hold the subject
_TO_SPO: dict[str, Callable[[int, int, int], tuple[int, int, int]] | None] = {
    SPO: None, POS: _from_pos, OSP: _from_osp,
}
