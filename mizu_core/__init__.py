"""Mizu: signed, content-addressed JSON messages in a triple store, synced between peers.

The public API (docs/api.md)::

    import mizu_core as mizu

    with mizu.Repository.open("path/to/folder") as repo:
        cid = repo.publish({"title": "hello"})
        rows = list(repo.query({"@select": "?t", "@where": {"title": "?t"}}))

Names are loaded when first used, so importing one module of the package (as the `mizu`
command does) does not load the store and the query engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mizu_core.errors import (
    BadKey,
    InvalidMessage,
    MissingAncestor,
    MizuError,
    NotARepository,
    NotFound,
    PeerError,
    QueryError,
    QueryTimeout,
    SignatureError,
    StoreError,
    UsageError,
)

if TYPE_CHECKING:
    from mizu_core.api import Repository
    from mizu_core.message.cid import CID
    from mizu_core.message.keys import PrivateKey, PublicKey
    from mizu_core.message.update import UpdateView
    from mizu_core.publish import PublishResult, Rejected
    from mizu_core.repo.repository import LogEntry

__version__ = "0.1.0"

_WHERE = {
    "CID": "mizu_core.message.cid",
    "PrivateKey": "mizu_core.message.keys",
    "PublicKey": "mizu_core.message.keys",
    "UpdateView": "mizu_core.message.update",
    "LogEntry": "mizu_core.repo.repository",
    "PublishResult": "mizu_core.publish",
    "Rejected": "mizu_core.publish",
    "Repository": "mizu_core.api",
}

__all__ = [
    "CID",
    "BadKey",
    "InvalidMessage",
    "LogEntry",
    "MissingAncestor",
    "MizuError",
    "NotARepository",
    "NotFound",
    "PeerError",
    "PrivateKey",
    "PublicKey",
    "PublishResult",
    "QueryError",
    "QueryTimeout",
    "Rejected",
    "Repository",
    "SignatureError",
    "StoreError",
    "UpdateView",
    "UsageError",
    "__version__",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'mizu_core' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
