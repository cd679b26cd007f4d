"""Typed errors of the Mizu library.

Each error carries the exit code the command line maps it to (SPEC §7) and an optional
hint; the CLI prints them as git-style one-liners and never shows a traceback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mizu_core.message.cid import CID


class MizuError(Exception):
    """Base of every error the library raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class UsageError(MizuError):
    """The caller asked for something that makes no sense (bad argument, bad key name)."""

    exit_code = 2


class NotARepository(MizuError):
    exit_code = 3


class InvalidMessage(MizuError):
    """A message (or block) failed decoding, reserved-field validation or size limits."""


class SignatureError(InvalidMessage):
    pass


class BadKey(MizuError):
    """A private key file could not be read (not a key, wrong password)."""


class NotFound(MizuError):
    """A block, message or path is not in the repository."""


class MissingAncestor(NotFound):
    """A `$prev` ancestor is not here (peers may have it)."""

    def __init__(self, message: str, cid: CID, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.cid = cid


class QueryError(MizuError):
    pass


class StoreError(MizuError):
    """The on-disk store is damaged or could not be opened."""


class PeerError(MizuError):
    exit_code = 4


class NotServed(PeerError):
    """The peer does not track the subscription asked for (not a failure of the peer)."""


class RejectedData(PeerError):
    """A peer sent data that failed verification: bad data, not an unreachable peer."""

    exit_code = 1


def shorten(value: str, limit: int = 40) -> str:
    """`value` for an error message: whole when short, else its first `limit` characters
    and its length, so that a hostile 4 MiB value never lands whole in an error line;
    control characters escaped, so that it stays one line."""
    shown = value if value.isprintable() else "".join(
        c if c.isprintable() else repr(c)[1:-1] for c in value[:limit])
    if len(value) <= limit:
        return shown
    return f"{shown[:limit]}… ({len(value)} characters)"


class QueryTimeout(QueryError):
    """A query ran past its time limit (`query.timeout`, or a server's own budget)."""
