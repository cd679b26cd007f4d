"""A query's time limit, checked cooperatively by the evaluator's loops.

Every loop that can run long without handing a solution on counts down a local counter
and calls `tick` when it runs out (every `EVERY` iterations): one integer decrement per
iteration, and a clock read per thousand. The generated BGP plans share the count through
`left`, so a plan called once per incoming solution still reaches `tick`.

The limit bounds the engine's own work: the time a caller holds a row (a terminal that
pages, a slow network peer) is not counted (see `rows`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, TypeVar

from mizu_core.errors import QueryTimeout

if TYPE_CHECKING:
    from mizu_core.repo.config import Config

EVERY = 1024  # iterations between two looks at the clock
T = TypeVar("T")


def configured_timeout(config: Config) -> float:
    """`query.timeout` from a repository's config: seconds a query may work (0: no
    limit). Its default and range are config.py's `KEYS`: a bad value is an error naming
    the key."""
    return float(config.get("query.timeout"))


class Deadline:
    """`seconds` of work from now; None (or 0) is no limit. `message` replaces the
    default error text (a server's budget names itself)."""

    __slots__ = ("_at", "_hint", "_message", "left", "seconds")

    def __init__(self, seconds: float | None = None, message: str | None = None,
                 hint: str | None = None) -> None:
        self.seconds = seconds
        self.left = EVERY  # the shared countdown of the generated plans
        self._at = time.monotonic() + seconds if seconds else None
        self._message = message
        self._hint = hint

    def tick(self) -> int:
        """Raise QueryTimeout if the time is up; return the next countdown."""
        if self._at is not None and time.monotonic() > self._at:
            raise QueryTimeout(
                self._message or f"query timed out after {self.seconds:g} s (query.timeout)",
                hint=self._hint,
            )
        return EVERY

    def rows(self, rows: Iterator[T]) -> Iterator[T]:
        """`rows`, each handed on with the clock stopped until the caller asks for the
        next one."""
        if self._at is None:
            yield from rows
            return
        clock = time.monotonic  # two reads a row: small beside a row's own cost
        for row in rows:
            held = clock()
            yield row
            self._at += clock() - held
