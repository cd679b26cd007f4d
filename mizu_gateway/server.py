"""Running the gateway: Hypercorn on trio, in the node's own event loop (`serve`, beside
libp2p) or alone (`run_offline`, `mizu serve --offline`)."""

from __future__ import annotations

import logging
import signal
import socket
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import trio

from mizu_core.api import Repository
from mizu_core.errors import MizuError, UsageError
from mizu_core.repo import serve_record
from mizu_core.sync.process import run
from mizu_gateway import settings
from mizu_gateway.app import make_app

DEFAULT_HOST = "127.0.0.1"


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
    from hypercorn.trio.run import worker_serve
    from hypercorn.utils import wrap_app

    hosts = [parse_bind(b) for b in binds]
    config = Config()
    config.bind = [f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in hosts]
    config.accesslog = None
    config.errorlog = _logger(log)
    # A connection that has not sent a whole request within keep_alive_timeout (5 s) is
    # closed by Hypercorn; one that stops reading its answer is closed by the kernel.
    gateway = settings.load(repo, [h for h, _ in hosts])
    try:
        sockets = config.create_sockets()
    except OSError as e:
        raise MizuError(f"cannot listen on {', '.join(config.bind)}: {e.strerror or e}") from None
    for sock in sockets.insecure_sockets:
        _drop_stalled_readers(sock, gateway.client_timeout)
        sock.listen(config.backlog)
    app = wrap_app(make_app(repo, gateway), config.wsgi_max_body_size, None)
    async with trio.open_nursery() as nursery:
        bound = await nursery.start(partial(worker_serve, app, config, sockets=sockets, shutdown_trigger=stop.wait))
        urls = [u.rstrip("/") + "/" for u in bound]
        for url in urls:
            if not _loopback(url):
                log(f"warning: the gateway at {url} is open beyond this machine: anyone who reaches it "
                    "reads every record not private")
        task_status.started(urls)


def _drop_stalled_readers(sock: socket.socket, seconds: float) -> None:
    """TCP_USER_TIMEOUT on the listening socket (accepted ones inherit it): an answer the
    client leaves unread (a zero window) for `seconds` makes the kernel close the
    connection. Hypercorn has no write time-out of its own, and shields its writes."""
    if hasattr(socket, "TCP_USER_TIMEOUT"):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, int(seconds * 1000))


def in_node(repo: Repository, binds: list[str], log: Callable[[str], None]) -> Callable[
        [trio.Nursery, trio.Event], Awaitable[list[str]]]:
    """The gateway as a service of a libp2p node's event loop (`ServingNode(extra=…)`)."""
    for bind in binds:
        parse_bind(bind)  # a bad one is a usage error before anything starts

    async def start(nursery: trio.Nursery, stop: trio.Event) -> list[str]:
        urls: list[str] = await nursery.start(serve, repo, binds, log, stop)
        return urls

    return start


def run_offline(repo: Repository, binds: list[str], ready: Callable[[list[str]], None],
                log: Callable[[str], None]) -> None:
    """`mizu serve --offline`: the gateway alone, no libp2p, until SIGTERM or SIGINT; its
    URLs recorded in `.mizu/serve.json` meanwhile, as a node records its addresses."""
    start = in_node(repo, binds, log)

    async def main() -> None:
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            urls = await start(nursery, stop)
            serve_record.record(repo, [], urls)
            try:  # signals are caught before `ready` says the node is up
                with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                    ready(urls)
                    async for signum in signals:
                        log(f"stopping on {signal.Signals(signum).name}")
                        break
            finally:
                serve_record.record(repo, None)
                stop.set()

    run(main)


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
