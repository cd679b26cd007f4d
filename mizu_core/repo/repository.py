"""The repository: a `.mizu/` folder (config, identity, LMDB store) or its in-memory twin.

Open it once and pass it down. Every write goes through `Ingest` in one transaction;
every read takes its own read transaction, so readers never wait for writers.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import operator
import os
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, overload

from mizu_core.errors import NotARepository, NotFound
from mizu_core.message import codec
from mizu_core.message.cid import CID, DAG_CBOR, multibase_b58, parse_cid
from mizu_core.message.templates import resolve_pointer
from mizu_core.message.update import UpdateView, update_view
from mizu_core.message.uris import StaticRef, parse_static
from mizu_core.repo import blockstore
from mizu_core.repo.config import Config, ConfigFile, global_config_path
from mizu_core.repo.index import TermCache, TripleIndex
from mizu_core.repo.ingest import (
    PIN_USER,
    Ingest,
    MessageInfo,
    Prepared,
    prepare,
    read_message,
    seal,
)
from mizu_core.repo.inputs import MessageText
from mizu_core.repo.kv import LmdbStore, MemoryStore, Store, Txn, private_memory

if TYPE_CHECKING:
    from mizu_core.message.keys import PrivateKey
    from mizu_core.repo.preparing import Record, Spool, Spooled, Stage

REPO_DIR = ".mizu"
CONFIG = "config.toml"
IDENTITY = "identity.pem"
STORE = "store"
GC_LOCK = "gc.lock"  # flock: shared by multi-transaction writers, exclusive for gc
# A write transaction stores at most _BATCH_SIZE messages: bigger ones rewrite the pages of
# the tables keyed by hash fewer times, for a little more memory (docs/performance.md). It
# ends sooner once the put has grown the process's memory by _BATCH_MEMORY (a large store
# may have a page to copy for each row a message adds).
_BATCH_SIZE = 15_000
_BATCH_MEMORY = 160 << 20
_GROWTH = 16 << 20  # what a transaction must add to memory before it counts as growing it
# Messages stored at a time (`Ingest.store_many`), and between releases of the store's
# mapped pages: each write maps ~100 kB (the pages it reads and their fault-around
# neighbours), so release often (it is cheap). Fewer per slice made storing slower, more
# raised peak memory (docs/performance.md).
_STORE_SLICE = 128
# A signed put signs while it stores (`_signed_segments`): the first segment is one batch,
# the later ones this many batches each (stored one CID range after another).
_SIGN_AHEAD = 2
# A message whose signed form might not fit in codec.MAX_MESSAGE_SIZE with this much room
# is signed once more while the input is validated, to check (a signature entry of any
# supported key takes under 6 KiB).
_SIGNING_ROOM = 16 << 10
_RANGE = operator.itemgetter(0)  # a spooled part's CID range


def _fits_signed(prepared: Prepared, key: PrivateKey | None) -> Prepared:
    """`prepared`, an unsigned message that `key` is to sign later, checked to fit then."""
    if key is not None and len(prepared.data) + _SIGNING_ROOM > codec.MAX_MESSAGE_SIZE:
        seal(prepared.message, prepared.signers, key)  # raises if it will not
    return prepared


def _unsigned_record(prepared: Prepared) -> Record:
    """A validated message's record before signing: no triples yet."""
    return prepared.cid.raw, prepared.data, prepared.signers, []


def _signed(record: Record, key: PrivateKey | None) -> Prepared:
    """An unsigned message's record (`_unsigned_record`) signed by `key`."""
    return seal(codec.decode_trusted(record[1]), record[2], key, record[1])


def _signed_segments(
    spooled: list[Spooled], stage: Stage, spool: Spool, cids: list[CID], batch_size: int
) -> Generator[tuple[list[Spooled], int], None, None]:
    """The validated messages of `spooled` signed by `stage` in forked workers, in
    segments (with how many records each holds) for `_store_segments`: the first of one
    batch, the next of _SIGN_AHEAD batches each, the last of what is left (so every batch
    but the last is whole). All the signing is queued at once and the workers run niced,
    so they sign the next segments on the core the store leaves idle while it stores this
    one. Their CIDs go to `cids`, in input order."""
    from mizu_core.repo.preparing import in_input_order, prepare_all

    segment: list[Spooled] = []
    held, limit = 0, batch_size
    with contextlib.closing(prepare_all(spooled, stage, {}, spool, ahead=len(spooled), nice=10)) as chunks:
        for chunk in chunks:
            for outcome in chunk.outcomes:  # all validated already: an error here is a bug
                if not isinstance(outcome, CID):
                    raise outcome
            cids += chunk.outcomes  # type: ignore[arg-type]
            part = chunk.spooled
            while held + len(part.order) >= limit:  # the segment ends in this part: split it
                records = list(in_input_order(part.parts, part.order))
                cut = limit - held
                yield [*segment, spool.write(records[:cut])], limit
                part = spool.write(records[cut:])
                segment, held, limit = [], 0, _SIGN_AHEAD * batch_size
            if part.order:
                segment.append(part)
                held += len(part.order)
    if segment:
        yield segment, held


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


@dataclass(frozen=True)
class LogEntry:
    cid: CID
    seq: int
    size: int
    signers: tuple[str, ...]  # base58btc multibase keys, as in $signatures
    pinned: bool


def _is_repository(folder: Path) -> bool:
    return (folder / CONFIG).is_file() and (folder / STORE).is_dir()


def find_repository(
    explicit: str | None = None, env: Mapping[str, str] | None = None, start: Path | None = None
) -> Path:
    """The `.mizu` folder to use: --repo, then MIZU_DIR, then the nearest one upward."""
    env = os.environ if env is None else env
    hint = "run 'mizu init' to create one, or pass --repo"
    for given in (explicit, env.get("MIZU_DIR")):
        if given:
            path = Path(given).expanduser().absolute()
            for candidate in (path / REPO_DIR, path):
                if _is_repository(candidate):
                    return candidate
            raise NotARepository(f"not a mizu repository: {path}", hint=hint)
    here = (start or Path.cwd()).absolute()
    for folder in (here, *here.parents):
        if _is_repository(folder / REPO_DIR):
            return folder / REPO_DIR
    raise NotARepository(
        "not a mizu repository (or any parent up to /)", hint=hint
    )


def as_cid(value: CID | str) -> CID:
    """A CID given as text by a script is parsed as one typed at the command line."""
    return value if isinstance(value, CID) else parse_cid(value)


def include_resolver(txn: Txn) -> Callable[[str], Any]:
    """How `$include` finds the messages it names: in this snapshot, or not at all."""

    def resolve_external(uri: str) -> Any:
        ref = parse_static(uri)
        target = read_message(txn, ref.cid.to_v1()) if ref else None
        if ref is None or target is None:
            raise NotFound(f"included message {uri} is not in the repository")
        return resolve_pointer(target, "#" + ref.path) if ref.path else target

    return resolve_external


class Repository:
    def __init__(
        self, store: Store, identity: PrivateKey | None, config: Config, path: Path | None = None
    ) -> None:
        """`identity` None: read `path/identity.pem` when first needed (reads never need it)."""
        self.store = store
        self._identity = identity
        self.config = config
        self.path = path  # the .mizu folder; None for a memory repository
        self._term_cache = TermCache()  # shared by read transactions

    @property
    def identity(self) -> PrivateKey:
        if self._identity is None:
            from mizu_core.message.keys import PrivateKey

            assert self.path is not None
            source = self.path / IDENTITY
            try:
                pem = source.read_bytes()
            except OSError as e:
                raise NotARepository(f"cannot read the identity of {self.path}: {e.strerror}") from None
            self._identity = PrivateKey.from_pem(pem, source=str(source))
        return self._identity

    # -- opening -------------------------------------------------------------------------

    @staticmethod
    def exists(directory: str | os.PathLike[str]) -> bool:
        """Whether `directory` holds a repository (`directory/.mizu`)."""
        return _is_repository(Path(directory).absolute() / REPO_DIR)

    @classmethod
    def init(cls, directory: str | os.PathLike[str] = ".") -> Self:
        """Create `directory/.mizu` and open it; an existing one is kept as it is."""
        mizu = Path(directory).absolute() / REPO_DIR
        created = not (mizu / CONFIG).exists()
        mizu.mkdir(parents=True, exist_ok=True)
        identity_path = mizu / IDENTITY
        if not identity_path.exists():
            from mizu_core.message.keys import PrivateKey

            key = PrivateKey.generate()
            fd = os.open(identity_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(key.to_pem())
        config = ConfigFile(mizu / CONFIG)
        if created:
            config.data.setdefault("core", {})["version"] = 1
            config.save()
        LmdbStore(str(mizu / STORE), create=True).close()
        return cls.open(mizu)

    @classmethod
    def open(cls, path: str | os.PathLike[str] | None = None) -> Self:
        """The repository of a working folder (its `.mizu`, or the nearest one upward, as
        the CLI finds it), or a `.mizu` folder itself; None: $MIZU_DIR, else upward from
        the current folder."""
        if path is None:
            mizu = find_repository()
        else:
            given = Path(path).expanduser().absolute()
            mizu = given if _is_repository(given) else find_repository(env={}, start=given)
        config = Config.of_repository(mizu)
        map_size = config.get("store.map-size")  # checked: a bad value names itself
        return cls(LmdbStore(str(mizu / STORE), map_size=map_size), None, config, mizu)

    @classmethod
    def memory(cls, identity: PrivateKey | None = None) -> Self:
        from mizu_core.message.keys import PrivateKey

        config = Config(None, ConfigFile(global_config_path()))
        return cls(MemoryStore(), identity or PrivateKey.generate(), config)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------

    @contextmanager
    def unpinned_writes(self) -> Iterator[None]:
        """Held by work that stores blocks over several transactions before anything pins
        them (add, import, fetch): `gc` waits until none is running, or it would drop them."""
        with self._gc_lock(exclusive=False):
            yield

    @contextmanager
    def collecting(self) -> Iterator[None]:
        """Held by gc: waits for every `unpinned_writes` to finish, and holds off new ones."""
        with self._gc_lock(exclusive=True):
            yield

    @contextmanager
    def _gc_lock(self, exclusive: bool) -> Iterator[None]:
        if self.path is None:  # a memory repository lives in one process
            yield
            return
        import fcntl

        with open(self.path / GC_LOCK, "a+b") as f:
            fcntl.flock(f, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    @overload
    def publish(
        self, message: Mapping[str, Any] | str | bytes | MessageText, /, *,
        sign: bool = True, signer: PrivateKey | None = None,
    ) -> CID: ...

    @overload
    def publish(
        self, messages: list[Any] | Iterator[Any], /, *,
        sign: bool = True, signer: PrivateKey | None = None, skip_invalid: bool = False,
    ) -> PublishResult: ...

    def publish(
        self, messages: Any, /, *,
        sign: bool = True, signer: PrivateKey | None = None, skip_invalid: bool = False,
    ) -> CID | PublishResult:
        """Publish one message (a dict, or JSON text) and return its CID; or publish a list
        or an iterator of them, `Lines` blocks of NDJSON among them, and return what was
        stored. Signed with `signer`, else the repository's identity, unless `sign=False`.
        """
        if isinstance(messages, (Mapping, str, bytes, MessageText)):
            if isinstance(messages, (str, bytes)):
                messages = MessageText(messages, "message")
            return self._publish([messages], sign, signer, False).cids[0]
        return self._publish(messages, sign, signer, skip_invalid)

    def _publish(
        self, messages: Iterable[Any], sign: bool, signer: PrivateKey | None, skip_invalid: bool
    ) -> PublishResult:
        """Publish messages: all are prepared first, then stored in batches.

        Items are IPLD dicts, `MessageText` whose errors name where the text came from, or
        `Lines` blocks of NDJSON (`inputs.read_lines`).
        Nothing is stored if any item is invalid (unless `skip_invalid`, which reports and
        skips it). Storing then takes one write transaction per `core.batch-size` messages,
        so after a crash each batch is there wholly or not at all, and publishing the same
        input again completes it; an input of more than one batch is stored one CID range
        after another (`_store_segments` says why), and so arrives in that order (when
        signed, segment by segment, see `_signed_segments`).
        """
        key = (signer or self.identity) if sign else None
        for setting, default in (("core.batch-size", _BATCH_SIZE), ("core.batch-memory", _BATCH_MEMORY)):
            self.config.positive_int(setting, default)  # fail before the work
        cids: list[CID] = []
        rejected: list[Rejected] = []
        schemas: dict[CID, dict[str, Any]] = {}  # schema messages published in this input

        def schema_lookup(ref: StaticRef) -> dict[str, Any] | None:
            cid = ref.cid.to_v1()
            if cid in schemas:
                return schemas[cid]
            with self.store.reader() as txn:
                return read_message(txn, cid)

        def parsed(item: Any) -> Any:
            if type(item) is MessageText:
                return codec.parse_json(item.text, item.line, links=True)
            return item

        @functools.cache
        def key_for_many() -> PrivateKey | None:  # workers run only for large inputs
            return key.for_many() if key is not None else None

        # Ed25519 and RSA give the same bytes the same signature, so a put signing with
        # them validates the whole input unsigned, then signs while it stores
        # (`_signed_segments`); ECDSA signs as it validates.
        later = key if key is not None and key.deterministic else None
        now = None if later else key

        def here(item: Any) -> Prepared:
            return _fits_signed(prepare(parsed(item), now, schema_lookup), later)

        def anywhere(item: Any) -> Prepared:  # in a worker: no store to look schemas up in
            return _fits_signed(prepare(parsed(item), now and key_for_many()), later and key_for_many())

        from mizu_core.repo.preparing import Spool, Stage, prepare_all  # writes only

        stage = Stage(here, anywhere)
        if later:  # the unsigned messages' records, schemas named by their signed CIDs
            stage = Stage(here, anywhere, _unsigned_record, lambda p: seal(p.message, p.signers, later).cid)
        spooled: list[Spooled] = []  # each task's records
        with Spool() as spool, _without_gc():
            with contextlib.closing(prepare_all(messages, stage, schemas, spool)) as chunks:
                for chunk in chunks:
                    spooled.append(chunk.spooled)
                    if chunk.valid:
                        cids += chunk.outcomes  # type: ignore[arg-type]
                    else:
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
            if later:
                signing = Stage(lambda r: _signed(r, later), lambda r: _signed(r, key_for_many()))
                cids = []
                segments = _signed_segments(spooled, signing, spool, cids, self._batch_size())
                with contextlib.closing(segments):  # ends the workers if storing fails
                    added, triples = self._store_segments(segments, count)
            else:
                added, triples = self._store_segments([(spooled, count)], count)
        return PublishResult(tuple(cids), tuple(rejected), added, triples)

    def _batch_size(self) -> int:
        return self.config.positive_int("core.batch-size", _BATCH_SIZE)

    def _store_segments(self, segments: Iterable[tuple[list[Spooled], int]], count: int) -> tuple[int, int]:
        """Store the spooled records, segment by segment (each holds how many records it
        says), in batches that never span two segments; `count` records in all."""
        from mizu_core.repo.preparing import in_input_order, records_of

        batch_size = self._batch_size()
        added = triples = 0
        # Each batch starts knowing the terms the committed ones stored (and claimed: ~6 a
        # message is typical).
        terms = TermCache(claims=8 * count)
        ceiling = private_memory() + self.config.positive_int("core.batch-memory", _BATCH_MEMORY)
        size = batch_size
        for spooled, total in segments:
            if total > batch_size:
                # One CID range after another (in input order within each): the tables
                # keyed by CID (messages, pins) then take each batch's rows in a few of
                # their pages rather than all over them, which LMDB copies and writes back
                # whole: faster, and less memory, than input order (docs/performance.md).
                records = records_of(sorted((p for s in spooled for p in s.parts), key=_RANGE))
            else:  # one batch: in input order
                records = (r for s in spooled for r in in_input_order(s.parts, s.order))
            stored = 0
            while stored < total:
                with self.store.writer() as txn:
                    ingest = Ingest(txn, self.store.release_pages, terms)
                    first, start = stored, private_memory()
                    batch_end = min(total, stored + size)
                    while stored < batch_end:
                        part = list(itertools.islice(records, min(batch_end - stored, _STORE_SLICE)))
                        assert part, "the spool holds fewer records than were prepared"
                        ingest.store_many(part)
                        stored += len(part)
                        # Index pages read while inserting stay mapped, and count as
                        # resident memory, until released (safe mid-transaction: writes go
                        # to private copies, never through the map).
                        self.store.release_pages()
                        # LMDB keeps the pages a transaction changed for the next to reuse,
                        # so memory grows only while this one changes more than any before
                        # it: past the budget, end the batch then, and let the next ones
                        # take as many messages as this one did, which mostly fit in those
                        # pages.
                        if (now := private_memory()) > ceiling and now > start + _GROWTH:
                            size = max(_STORE_SLICE, stored - first)
                            break
                    ingest.finish()
                added += ingest.added
                triples += ingest.triples
        return added, triples

    # -- reading -------------------------------------------------------------------------

    def block(self, cid: CID | str) -> bytes:
        cid = as_cid(cid)
        with self.store.reader() as txn:
            data = blockstore.get(txn, cid.to_v1().raw)
        if data is None:
            raise NotFound(f"{cid} is not in the repository")
        return bytes(data)

    def has(self, cid: CID | str) -> bool:
        cid = as_cid(cid)
        with self.store.reader() as txn:
            return blockstore.has(txn, cid.to_v1().raw)

    def message(self, cid: CID | str) -> dict[str, Any]:
        """A stored message as IPLD: its links are `CID`s (`codec.to_json` gives JSON)."""
        cid = as_cid(cid)
        if cid.codec != DAG_CBOR:
            raise NotFound(f"{cid} is not a message (codec 0x{cid.codec:x})")
        with self.store.reader() as txn:
            message = read_message(txn, cid.to_v1())
        if message is None:
            raise NotFound(f"message {cid} is not in the repository")
        return message

    def resolve(self, cid: CID | str, path: str = "") -> Any:
        """The value at `path` (`a/b/0`) inside a message, following CID links."""
        cid = as_cid(cid)
        value: Any = self.message(cid)
        walked = str(cid)
        for seg in [s for s in path.split("/") if s]:
            if type(value) is CID:
                value = codec.decode(self.block(value))
            if type(value) is dict and seg in value:
                value = value[seg]
            elif type(value) is list and seg.isdigit() and int(seg) < len(value):
                value = value[int(seg)]
            else:
                raise NotFound(f"no '{seg}' under {walked}")
            walked += "/" + seg
        return value

    def update_view(self, cid: CID | str) -> UpdateView:
        """The message merged with its `$prev` ancestors (SPEC §4)."""
        cid = as_cid(cid)
        with self.store.reader() as txn:
            return update_view(cid.to_v1(), lambda c: read_message(txn, c))

    def info(self, cid: CID) -> MessageInfo:
        with self.store.reader() as txn:
            raw = txn.get("messages", cid.to_v1().raw)
        if raw is None:
            raise NotFound(f"message {cid} is not in the repository")
        return MessageInfo.decode(cid.to_v1(), bytes(raw))

    def log(self, limit: int | None = None) -> Iterator[LogEntry]:
        """Messages in arrival order, newest first."""
        with self.store.reader() as txn:
            for n, (_, raw_cid) in enumerate(txn.scan("log", reverse=True)):
                if limit is not None and n >= limit:
                    return
                cid = CID(bytes(raw_cid))
                meta = txn.get("messages", cid.raw)
                if meta is None:
                    continue
                info = MessageInfo.decode(cid, bytes(meta))
                signers = tuple(map(multibase_b58, info.signers))  # marshalled keys
                pinned = txn.get("pins", cid.raw) is not None
                yield LogEntry(cid, info.seq, info.size, signers, pinned)

    @contextmanager
    def index(self) -> Iterator[TripleIndex]:
        """The triple index over one read transaction (a consistent snapshot)."""
        with self.store.reader() as txn:
            yield TripleIndex(txn, self._term_cache)

    def count_triples(self) -> int:
        with self.store.reader() as txn:
            count: int = txn.count("spo")
            return count

    # -- pins ----------------------------------------------------------------------------

    def pin(self, cids: Iterable[CID]) -> None:
        with self.store.writer() as txn:
            for cid in cids:
                if not blockstore.has(txn, cid.to_v1().raw):
                    raise NotFound(f"{cid} is not in the repository")
                if txn.get("pins", cid.to_v1().raw) is None:
                    txn.put("pins", cid.to_v1().raw, PIN_USER)

    def unpin(self, cids: Iterable[CID]) -> int:
        with self.store.writer() as txn:
            return sum(txn.delete("pins", cid.to_v1().raw) for cid in cids)

    def pins(self) -> list[CID]:
        with self.store.reader() as txn:
            return [CID(bytes(k)) for k, _ in txn.scan("pins")]
