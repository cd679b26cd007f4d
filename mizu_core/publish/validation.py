"""The first stage of every publish: each message parsed, validated, encoded and mapped
to triples, and signed unless it is to be signed later (`signing.py`)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from mizu_core.message import codec
from mizu_core.message.uris import StaticRef
from mizu_core.publish.inputs import MessageText
from mizu_core.publish.records import Record, record
from mizu_core.publish.stages import Schemas, Stage
from mizu_core.repo.ingest import Prepared, prepare, seal

if TYPE_CHECKING:
    from mizu_core.message.cid import CID
    from mizu_core.message.keys import PrivateKey
    from mizu_core.repo.repository import Repository

# A message whose signed form might not fit in codec.MAX_MESSAGE_SIZE with this much room
# is signed once more while the input is validated, to check (a signature entry of any
# supported key takes under 6 KiB).
SIGNING_ROOM = 16 << 10


def fits_signed(prepared: Prepared, key: PrivateKey | None) -> Prepared:
    """`prepared`, an unsigned message that `key` is to sign later, checked to fit then."""
    if key is not None and len(prepared.data) + SIGNING_ROOM > codec.MAX_MESSAGE_SIZE:
        seal(prepared.message, prepared.signers, key)  # raises if it will not
    return prepared


def parsed(item: Any) -> Any:
    """An input item as IPLD: `MessageText` parsed, a dict as it is."""
    if type(item) is MessageText:
        return codec.parse_json(item.text, item.line, links=True)
    return item


class Validating(Stage):
    """Validate each message (a `$schema` it names looked up among the schema messages
    validated so far, then in `repo`) and sign it with `key`, if any. Ed25519 and RSA give
    the same bytes the same signature, so a put signing with them validates the whole
    input unsigned (`sign_later` is then the key), and signs while it stores; ECDSA signs
    as it validates."""

    def __init__(self, repo: Repository, key: PrivateKey | None, schemas: Schemas) -> None:
        self._repo = repo
        self._schemas = schemas
        self._key = key
        self.sign_later = key if key is not None and key.deterministic else None
        self._sign_now = None if self.sign_later else key

    def _schema(self, ref: StaticRef) -> dict[str, Any] | None:
        cid = ref.cid.to_v1()
        if cid in self._schemas:
            return self._schemas[cid]
        return self._repo.find_message(cid)

    @functools.cached_property
    def _worker_key(self) -> PrivateKey | None:
        """The key as workers sign with it (`PrivateKey.for_many`), made by each worker
        (the only ones that need it) when it first signs."""
        return self._key.for_many() if self._key is not None else None

    def in_process(self, item: Any) -> Prepared:
        return fits_signed(prepare(parsed(item), self._sign_now, self._schema), self.sign_later)

    def in_worker(self, item: Any) -> Prepared:  # no store to look schemas up in
        key = self._worker_key
        return fits_signed(prepare(parsed(item), self._sign_now and key), self.sign_later and key)

    def record(self, prepared: Prepared) -> Record:
        return record(prepared, to_sign=self.sign_later is not None)

    def named(self, prepared: Prepared) -> CID:
        if self.sign_later is None:
            return prepared.cid
        return seal(prepared.message, prepared.signers, self.sign_later).cid  # signed, as stored
