"""The repository: a `.mizu/` folder (config, identity, LMDB store) or its in-memory twin.

Open it once and pass it down. Every write goes through `Ingest` in one transaction;
every read takes its own read transaction, so readers never wait for writers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Container, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from mizu_core.errors import NotARepository, NotFound
from mizu_core.message import codec
from mizu_core.message.cid import CID, DAG_CBOR, IDENTITY_HASH, multibase_b58, parse_cid
from mizu_core.message.templates import child, resolve_pointer
from mizu_core.message.update import UpdateView, update_view
from mizu_core.message.uris import parse_static
from mizu_core.repo import arrivals, blockstore, pins
from mizu_core.repo.config import Config, ConfigFile, global_config_path
from mizu_core.repo.index import TermCache, TripleIndex
from mizu_core.repo.ingest import Ingest, MessageInfo, read_message
from mizu_core.repo.kv import LmdbStore, MemoryStore, Store, Txn
from mizu_core.repo.tables import LOG, MESSAGES, SPO

if TYPE_CHECKING:  # these load when first used: a read (`mizu query`) never needs them
    from mizu_core.message.keys import PrivateKey
    from mizu_core.repo.file_stats import FileStat
    from mizu_core.repo.received import Checked

REPO_DIR = ".mizu"
CONFIG = "config.toml"
IDENTITY = "identity.pem"
STORE = "store"
GC_LOCK = "gc.lock"  # flock: shared by multi-transaction writers, exclusive for gc


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

    @contextmanager
    def ingesting(self, terms: TermCache | None = None) -> Iterator[Ingest]:
        """One write transaction that stores through `Ingest`, the one path into the store
        (`terms`: as `Ingest` takes them). Its queued rows are written when the block
        ends, and commit with it; if the block raises, nothing is stored."""
        with self.store.writer() as txn:
            ingest = Ingest(txn, self.store.release_pages, terms)
            yield ingest
            ingest.finish()

    def release_pages(self) -> None:
        """Unmap the store's pages read so far, which count as this process's memory
        until then (safe inside a write transaction: writes never go through the map)."""
        self.store.release_pages()

    def open_for_writes(self) -> None:
        """Make the store writable now. A store opened read-only is reopened for writing by
        its first writer, which must not happen under another thread's reader: a server
        that reads in worker threads calls this before it starts them."""
        with self.store.writer():
            pass

    def store_received(self, blocks: Iterable[Checked], terms: TermCache | None = None) -> int:
        """Store blocks from elsewhere, checked by `received.check_block`, in one write
        transaction (all or none); returns how many were new. `terms`: as `Ingest` takes
        them."""
        from mizu_core.repo.received import store_checked

        with self.store.writer() as txn:
            return store_checked(txn, blocks, self.store.release_pages, terms)

    def store_file_blocks(
        self, blocks: Iterable[tuple[CID, bytes]],
        stats: Iterable[tuple[str | os.PathLike[str], bool, FileStat]] = (), pin: CID | None = None,
    ) -> None:
        """In one write transaction: keep file blocks (not messages) by CID, record what was
        learnt of the files they came from (path, raw leaves?, stat), and pin `pin`."""
        from mizu_core.repo import file_stats

        with self.store.writer() as txn:
            for cid, block in blocks:
                blockstore.put(txn, cid.to_v1().raw, block)
            for path, raw_leaves, recorded in stats:
                file_stats.write(txn, path, raw_leaves, recorded)
            if pin is not None:
                pins.pin(txn, pin.to_v1().raw)

    # -- reading -------------------------------------------------------------------------

    def block(self, cid: CID | str) -> bytes:
        cid = as_cid(cid)
        data = self.find_block(cid)
        if data is None:
            raise NotFound(f"{cid} is not in the repository")
        return data

    def find_block(self, cid: CID) -> bytes | None:
        """A stored block, or None; an identity CID's block is its digest (never stored)."""
        if cid.hash_code == IDENTITY_HASH:
            return cid.digest
        with self.store.reader() as txn:
            data = blockstore.get(txn, cid.to_v1().raw)
        return bytes(data) if data is not None else None

    def blocks(self, cids: Iterable[CID], max_bytes: int | None = None) -> list[tuple[CID, bytes]]:
        """The stored blocks among `cids`, in their order, from one snapshot; with
        `max_bytes`, up to the one that would take their total over it (the first is
        always given)."""
        found: list[tuple[CID, bytes]] = []
        size = 0
        with self.store.reader() as txn:
            for cid in cids:
                data = blockstore.get(txn, cid.to_v1().raw)
                if data is None:
                    continue
                if max_bytes is not None and found and size + len(data) > max_bytes:
                    break
                found.append((cid, bytes(data)))
                size += len(data)
        return found

    def scan_blocks(self) -> Iterator[tuple[CID, bytes]]:
        """Every stored block, as `blockstore.scan` orders them; one read transaction is
        held while the iterator runs."""
        with self.store.reader() as txn:
            for key, data in blockstore.scan(txn):
                yield CID(key), bytes(data)

    def count_blocks(self) -> int:
        with self.store.reader() as txn:
            return blockstore.count(txn)

    def has(self, cid: CID | str) -> bool:
        cid = as_cid(cid)
        with self.store.reader() as txn:
            return blockstore.has(txn, cid.to_v1().raw)

    def missing(self, cids: Iterable[CID]) -> list[CID]:
        """Those of `cids` not stored, in their order (one snapshot)."""
        with self.store.reader() as txn:
            return [cid for cid in cids if not blockstore.has(txn, cid.to_v1().raw)]

    def file_stat(self, path: str | os.PathLike[str], raw_leaves: bool) -> FileStat | None:
        """What was recorded of the file at absolute `path` when it was last added with
        this leaf layout, if anything and if its root is still stored."""
        from mizu_core.repo import file_stats

        with self.store.reader() as txn:
            recorded = file_stats.read(txn, path, raw_leaves)
            if recorded is None or not blockstore.has(txn, recorded.root.to_v1().raw):
                return None
            return recorded

    def message(self, cid: CID | str) -> dict[str, Any]:
        """A stored message as IPLD: its links are `CID`s (`codec.to_json` gives JSON)."""
        cid = as_cid(cid)
        if cid.codec != DAG_CBOR:
            raise NotFound(f"{cid} is not a message (codec 0x{cid.codec:x})")
        message = self.find_message(cid.to_v1())
        if message is None:
            raise NotFound(f"message {cid} is not in the repository")
        return message

    def find_message(self, cid: CID) -> dict[str, Any] | None:
        """A stored message by its CIDv1, or None."""
        with self.store.reader() as txn:
            return read_message(txn, cid)

    def resolve(self, cid: CID | str, path: str = "", hidden: Container[CID] = ()) -> Any:
        """The value at `path` (`a/b/0`) inside a message, following CID links (none
        into or from a block in `hidden`: NotFound, as if it were not here)."""
        cid = as_cid(cid)
        if cid.to_v1() in hidden:
            raise NotFound(f"message {cid} is not in the repository")
        value: Any = self.message(cid)
        walked = str(cid)
        for seg in [s for s in path.split("/") if s]:
            if type(value) is CID:
                if value.to_v1() in hidden:
                    raise NotFound(f"no '{seg}' under {walked}")
                value = codec.decode(self.block(value))
            try:
                value = child(value, seg)
            except KeyError:
                raise NotFound(f"no '{seg}' under {walked}") from None
            walked += "/" + seg
        return value

    def update_view(self, cid: CID | str) -> UpdateView:
        """The message merged with its `$prev` ancestors (SPEC §4)."""
        cid = as_cid(cid)
        with self.store.reader() as txn:
            return update_view(cid.to_v1(), lambda c: read_message(txn, c))

    def info(self, cid: CID) -> MessageInfo:
        with self.store.reader() as txn:
            raw = txn.get(MESSAGES, cid.to_v1().raw)
        if raw is None:
            raise NotFound(f"message {cid} is not in the repository")
        return MessageInfo.decode(cid.to_v1(), bytes(raw))

    def next_arrival(self) -> int:
        """The arrival number the next new message gets: it grows whenever one arrives
        (a put, a pull, a push, an import), so whoever watches for changes polls it."""
        with self.store.reader() as txn:
            return arrivals.next_seq(txn)

    def log(self, limit: int | None = None) -> Iterator[LogEntry]:
        """Messages in arrival order, newest first."""
        with self.store.reader() as txn:
            for n, (_, raw_cid) in enumerate(txn.scan(LOG, reverse=True)):
                if limit is not None and n >= limit:
                    return
                cid = CID(bytes(raw_cid))
                meta = txn.get(MESSAGES, cid.raw)
                if meta is None:
                    continue
                info = MessageInfo.decode(cid, bytes(meta))
                signers = tuple(map(multibase_b58, info.signers))  # marshalled keys
                pinned = pins.is_pinned(txn, cid.raw)
                yield LogEntry(cid, info.seq, info.size, signers, pinned)

    @contextmanager
    def index(self) -> Iterator[TripleIndex]:
        """The triple index over one read transaction (a consistent snapshot)."""
        with self.store.reader() as txn:
            yield TripleIndex(txn, self._term_cache)

    def count_triples(self) -> int:
        with self.store.reader() as txn:
            count: int = txn.count(SPO)
            return count

    # -- pins ----------------------------------------------------------------------------

    def pin(self, cids: Iterable[CID]) -> None:
        with self.store.writer() as txn:
            for cid in cids:
                if not blockstore.has(txn, cid.to_v1().raw):
                    raise NotFound(f"{cid} is not in the repository")
                pins.pin(txn, cid.to_v1().raw)

    def unpin(self, cids: Iterable[CID]) -> int:
        with self.store.writer() as txn:
            return sum(pins.unpin(txn, cid.to_v1().raw) for cid in cids)

    def pins(self) -> list[CID]:
        with self.store.reader() as txn:
            return [CID(raw) for raw in pins.pinned(txn)]
