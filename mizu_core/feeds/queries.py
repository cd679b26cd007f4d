"""The one way feeds read a json-rql query: subscriptions, local filters and a serving node
all match the algebra `compile_query` gives."""

from __future__ import annotations

from typing import Any

from mizu_core.message.cid import CID
from mizu_core.message.uris import message_iri
from mizu_core.query import algebra, engine
from mizu_core.query.jsonrql import Parser
from mizu_core.repo.kv import Txn
from mizu_core.repo.repository import include_resolver


def compile_query(txn: Txn, query: Any, cid: CID | None = None) -> algebra.Query:
    """`query` as algebra, its `$include`s read from this snapshot. With `cid`, `query` is
    the message stored under that CID: its partial references point into it."""
    prepared = engine.prepare(query, None, include_resolver(txn), "", cid is not None)
    parser = Parser(message_iri(cid), query) if cid is not None else Parser()
    return parser.query(prepared)
