"""Running a long-lived trio program (`mizu serve`, with or without libp2p): SIGPIPE is
an error on the one socket a peer reset, not the end of the process, and the first real
error of a nursery's exception group is what the caller sees."""

from __future__ import annotations

import signal
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import trio

T = TypeVar("T")


def first_error(group: BaseExceptionGroup[Any]) -> BaseException:
    """The first real error in a trio exception group (nurseries wrap what they raise)."""
    for error in group.exceptions:
        if isinstance(error, BaseExceptionGroup):
            return first_error(error)
        if not isinstance(error, trio.Cancelled):
            return error  # type: ignore[no-any-return]
    return group


def run(async_fn: Callable[[], Awaitable[T]]) -> T:
    # The CLI lets SIGPIPE kill it quietly (`mizu log | head`); a server must not die of it.
    previous = signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    try:
        return trio.run(async_fn)
    except BaseExceptionGroup as group:
        raise first_error(group) from None
    finally:
        signal.signal(signal.SIGPIPE, previous)
