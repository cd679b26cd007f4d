"""The one way feeds read a json-rql query: subscriptions, local filters and a serving node
all match the algebra `compile_query` gives.

A query inside a larger message (a stream's named query, `CID/path`, SPEC §9) is a feed
too. Its id must be one message CID, the same on every node, so it is named by a *pointer*:
the unsigned message `{"$include": "https://mizu.stream/v0/view-raw/CID/path"}` (`pointer`
builds it: the CID as base32 CIDv1, the path without a leading or trailing `/`). A message
that is only such an include is read as the query at that place, exactly as `mizu query
--cid CID/path` reads it: its partial references point into the message CID.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mizu_core.errors import NotFound, QueryError
from mizu_core.message.cid import CID, DAG_CBOR
from mizu_core.message.signatures import SIGNATURES
from mizu_core.message.templates import INCLUDE
from mizu_core.message.uris import VIEW_RAW, message_iri, parse_static
from mizu_core.query import algebra, engine
from mizu_core.query.jsonrql import Parser
from mizu_core.repo.ingest import read_message
from mizu_core.repo.kv import Txn
from mizu_core.repo.repository import include_resolver


def pointer(cid: CID, path: str) -> dict[str, Any]:
    """The message naming the feed of the query at `path` inside message `cid`."""
    return {INCLUDE: f"{VIEW_RAW}{cid.to_v1()}/{path.strip('/')}"}


def pointer_target(message: Any) -> tuple[CID, str] | None:
    """(message CID, path) when `message` is a pointer to a query inside a message: its
    only field (`$signatures` aside) an `$include` of an absolute view-raw URI of a
    DAG-CBOR message. None for any other message."""
    if type(message) is not dict or type(message.get(INCLUDE)) is not str:
        return None
    if any(key not in (INCLUDE, SIGNATURES) for key in message):
        return None
    ref = parse_static(message[INCLUDE])
    if ref is None or ref.action != "view-raw" or ref.cid.codec != DAG_CBOR:
        return None
    return ref.cid.to_v1(), ref.path.strip("/")


def compile_query(txn: Txn, query: Any, cid: CID | None = None,
                  held: Mapping[CID, Any] | None = None) -> algebra.Query:
    """`query` as algebra, its `$include`s read from this snapshot (or from `held`,
    messages received with it and not stored yet). With `cid`, `query` is the message
    stored under that CID: its partial references point into it. A pointer
    (`pointer_target`) compiles as the query it points at."""
    resolve = _resolver(txn, held or {})
    target = pointer_target(query)
    if target is not None:
        home, path = target
        message = (held or {}).get(home) or read_message(txn, home)
        if message is None:
            raise NotFound(f"message {home}, which holds the query at '{path}', is not here")
        try:
            prepared = engine.prepare(message, None, resolve, path, True)
        except QueryError as e:
            text = str(e)
            where = f"'{path}'" if path else "the message"
            if path and (text.startswith(f"{where} ") or text.startswith(f"no query at {where}")):
                text = text.replace(where, f"{where} in {home}", 1)
            elif not path:
                text = text.replace(where, f"message {home}", 1)
            raise QueryError(text, e.hint) from None
        return Parser(message_iri(home), message).query(prepared)
    prepared = engine.prepare(query, None, resolve, "", cid is not None)
    parser = Parser(message_iri(cid), query) if cid is not None else Parser()
    return parser.query(prepared)


def _resolver(txn: Txn, held: Mapping[CID, Any]) -> Callable[[str], Any]:
    from_store = include_resolver(txn)
    if not held:
        return from_store

    def resolve(uri: str) -> Any:
        from mizu_core.message.templates import resolve_pointer

        ref = parse_static(uri)
        message = held.get(ref.cid.to_v1()) if ref is not None else None
        if ref is None or message is None:
            return from_store(uri)
        return resolve_pointer(message, "#" + ref.path) if ref.path else message

    return resolve
