"""Running the gateway: Hypercorn on trio, in the node's own event loop (`serve`, beside
libp2p) or alone (`run_offline`, `mizu serve --offline`)."""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from functools import partial
from typing import Any

import trio

from mizu_core.api import Repository
from mizu_core.errors import MizuError, UsageError
from mizu_gateway import settings
from mizu_gateway.app import make_app

DEFAULT_HOST = "127.0.0.1"
READ_TIMEOUT = 30  # seconds a client may take to send its next bytes (a slow sender is cut)


def parse_bind(text: str) -> tuple[str, int]:
    """`[HOST:]PORT` (an IPv6 host in brackets) as (host, port); the host is loopback if
    not given."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]") if sep else DEFAULT_HOST
    if not port.isdigit() or int(port) > 65535 or not host:
        raise UsageError(f"--http takes [HOST:]PORT, not '{text[:80]}'")
    return host, int(port)


async def serve(repo: Repository, binds: list[str], log: Callable[[str], None],
                stop: trio.Event, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """Serve the gateway on `binds` until `stop` is set; tells `task_status` the URLs it
    listens on (`http://HOST:PORT/`)."""
    from hypercorn.config import Config
    from hypercorn.trio import serve as hypercorn_serve

    hosts = [parse_bind(b) for b in binds]
    config = Config()
    config.bind = [f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in hosts]
    config.accesslog = None
    config.errorlog = _logger(log)
    config.read_timeout = READ_TIMEOUT
    app = make_app(repo, settings.load(repo, [h for h, _ in hosts]))
    async with trio.open_nursery() as nursery:
        try:
            bound = await nursery.start(partial(hypercorn_serve, app, config, shutdown_trigger=stop.wait))
        except (OSError, BaseExceptionGroup) as e:
            error = _first(e) if isinstance(e, BaseExceptionGroup) else e
            if not isinstance(error, OSError):
                raise
            raise MizuError(f"cannot listen on {', '.join(config.bind)}: {error.strerror or error}") from None
        urls = [u.rstrip("/") + "/" for u in bound]
        for url in urls:
            if not _loopback(url):
                log(f"warning: the gateway at {url} is open beyond this machine: anyone who reaches it "
                    "reads every record not private")
        task_status.started(urls)


def run_offline(repo: Repository, binds: list[str], ready: Callable[[list[str]], None],
                log: Callable[[str], None], record: Callable[[list[str] | None], None]) -> None:
    """`mizu serve --offline`: the gateway alone, no libp2p, until SIGTERM or SIGINT."""
    for bind in binds:
        parse_bind(bind)  # a bad one is a usage error before anything starts

    async def main() -> None:
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            urls = await nursery.start(serve, repo, binds, log, stop)
            record(urls)
            try:
                ready(urls)
                with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                    async for signum in signals:
                        log(f"stopping on {signal.Signals(signum).name}")
                        break
            finally:
                record(None)
                stop.set()

    try:
        trio.run(main)
    except BaseExceptionGroup as group:  # a nursery's: the first real error
        raise _first(group) from None


def _first(group: BaseExceptionGroup[Any]) -> BaseException:
    for error in group.exceptions:
        if isinstance(error, BaseExceptionGroup):
            return _first(error)
        if not isinstance(error, trio.Cancelled):
            return error  # type: ignore[no-any-return]
    return group


def _loopback(url: str) -> bool:
    import ipaddress
    from urllib.parse import urlsplit

    host = urlsplit(url).hostname or ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _logger(log: Callable[[str], None]) -> logging.Logger:
    """Hypercorn's error log as one line each in the node's log (warnings and worse)."""
    class OneLine(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            error = record.exc_info[1] if record.exc_info else None
            log(f"gateway: {record.getMessage()}" + (f": {type(error).__name__}: {error}" if error else ""))

    logger = logging.getLogger("mizu.gateway")
    logger.handlers = [OneLine()]
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    return logger
