"""The public `Repository`: the stored repository with the layers built on it.

`repo.Repository` is the repository as the store knows it (opening, blocks, messages, the
log, pins). This class adds what needs the layers above the store: publishing
(`publish`), queries, which hide what the local block filter covers (`feeds`), files
(`files`), and gc, which keeps what feeds hold. Scripts (`import mizu_core as mizu`) and the CLI use this one;
the layers below take the store's class, so that none of them imports upward.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from mizu_core.errors import NotFound
from mizu_core.message import codec
from mizu_core.message.cid import CID
from mizu_core.message.uris import message_iri
from mizu_core.repo import repository
from mizu_core.repo.ingest import read_message
from mizu_core.repo.repository import as_cid, include_resolver

if TYPE_CHECKING:
    from mizu_core.message.keys import PrivateKey
    from mizu_core.publish import PublishResult
    from mizu_core.publish.inputs import MessageText
    from mizu_core.repo.upkeep import GcResult


class Repository(repository.Repository):
    # -- publishing ----------------------------------------------------------------------

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
        from mizu_core.publish import publish  # writes only

        return publish(self, messages, sign=sign, signer=signer, skip_invalid=skip_invalid)

    # -- queries -------------------------------------------------------------------------

    def query(
        self, query: Any = None, params: dict[str, Any] | None = None, *,
        cid: CID | str | None = None, path: str = "", sparql: bool = False, nquads: bool = False,
        timeout: float | None = None, public: bool = False,
    ) -> Iterator[Any]:
        """Run a json-rql query (an object or JSON text) and yield JSON rows as found.

        With `cid`, run the query stored in that message (at `path` inside it); its partial
        references point into that message. With `sparql`, `query` is SPARQL text. With
        `nquads`, a @construct or @describe yields N-Quads lines instead of objects. The
        whole query sees one snapshot. It may work for `timeout` seconds (default: the
        `query.timeout` setting, 30; 0 is no limit), not counting the time the caller
        holds each row; past that, a QueryTimeout. With `public`, what a private filter
        covers is hidden too, as from peers (a block filter's always is).
        """
        from mizu_core.feeds.filters import hidden_subjects
        from mizu_core.feeds.queries import pointer_target
        from mizu_core.query import engine
        from mizu_core.query.deadline import Deadline, configured_timeout

        seconds = configured_timeout(self.config) if timeout is None else timeout
        if timeout is None:
            deadline = Deadline(seconds, hint="raise it with: mizu config set query.timeout SECONDS (0: no limit)")
        else:  # the caller's own limit, not the setting
            deadline = Deadline(seconds, f"query timed out after {seconds:g} s")
        with self.index() as whole:
            txn = whole.txn
            index = whole.hiding(hidden_subjects(self, txn, ("block", "private") if public else ("block",)))
            if sparql:
                yield from engine.run_sparql(query, index, nquads, deadline)
                return
            message, self_iri = None, None
            if cid is not None:
                cid = as_cid(cid)
                message = read_message(txn, cid.to_v1())
                if message is None:
                    raise NotFound(f"message {cid} is not in the repository")
                target = pointer_target(message) if not path else None
                if target is not None:  # a feed's pointer (CID/path): run what it points at
                    cid, path = target
                    message = read_message(txn, cid)
                    if message is None:
                        raise NotFound(f"message {cid}, which the query points into, is not in the repository")
                query, self_iri = message, message_iri(cid.to_v1())
            elif isinstance(query, (str, bytes)):
                query = codec.parse_json(query)

            prepared = engine.prepare(query, params, include_resolver(txn), path, cid is not None)
            yield from engine.run(prepared, index, self_iri, message, nquads, deadline)

    # -- files ---------------------------------------------------------------------------

    def add(self, path: str | os.PathLike[str], *, raw_leaves: bool = False) -> CID:
        """Add a file or folder as `mizu add` does (UnixFS, the CID `ipfs add` gives);
        return its root's CIDv1, pinned."""
        from mizu_core.files.tree import add_path

        return add_path(self, Path(path), raw_leaves)[-1].link.cid.to_v1()

    def cat(self, target: CID | str) -> bytes:
        """The bytes of a stored file: `CID`, `CID/path/in/folder` or `ipfs://CID/…`."""
        from mizu_core.files.tree import read_file, resolve_target

        return b"".join(read_file(self, resolve_target(self, str(target))))

    def get(self, target: CID | str, destination: str | os.PathLike[str]) -> int:
        """Write a stored file or folder (or a site snapshot) to `destination`, as
        `mizu get`; return the number of files written."""
        from mizu_core.files.tree import resolve_target, restore

        return restore(self, resolve_target(self, str(target)), Path(destination))

    # -- upkeep --------------------------------------------------------------------------

    def gc(self) -> GcResult:
        """Drop every block that no pin, subscription or pin filter keeps (directly or
        through links), with its triples."""
        from mizu_core.feeds.kept import gc_roots
        from mizu_core.repo.upkeep import gc

        return gc(self, gc_roots(self))
