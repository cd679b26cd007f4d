"""What the gateway reads from the repository's config once, at start (man/mizu-config.1)."""

from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from mizu_core.api import Repository
from mizu_core.errors import MizuError

TOKEN_FILE = "gateway-token"  # in .mizu/: the bearer token writes need, made 0600 at first serve
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")


@dataclass(frozen=True)
class Settings:
    hosts: frozenset[str]  # Host names answered (lower case, no port); `*.localhost` always
    max_body: int
    max_queries: int
    max_watchers: int
    query_timeout: float
    client_timeout: float  # seconds an answer may sit unread before the connection is dropped
    token: str | None  # None: an in-memory repository, so no writes


def load(repo: Repository, bound_hosts: list[str]) -> Settings:
    from mizu_core.query.deadline import configured_timeout

    extra = repo.config.get("gateway.hosts") or []
    hosts = {h.lower() for h in (*LOOPBACK_NAMES, *([extra] if isinstance(extra, str) else extra))}
    hosts.update(_host_name(h) for h in bound_hosts if not _unspecified(h))
    timeout = float(repo.config.get("gateway.query-timeout"))
    local = configured_timeout(repo.config)
    return Settings(frozenset(hosts), repo.config.get("gateway.max-body"), repo.config.get("gateway.max-queries"),
                    repo.config.get("gateway.max-watchers"), min(timeout, local) if local > 0 else timeout,
                    float(repo.config.get("gateway.client-timeout")), token(repo))


def token(repo: Repository) -> str | None:
    """The bearer token of `.mizu/gateway-token`, made (0600, 32 random bytes) if absent."""
    if repo.path is None:
        return None
    path = Path(repo.path) / TOKEN_FILE
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        text = secrets.token_urlsafe(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another serve made it meanwhile
            return token(repo)
        with os.fdopen(fd, "w") as f:
            f.write(text + "\n")
    except OSError as e:
        raise MizuError(f"cannot read {path}: {e.strerror}") from None
    if len(text) < 16:
        raise MizuError(f"{path} holds no usable token (under 16 characters)", hint="delete it: serve makes another")
    return text


def _host_name(host: str) -> str:
    try:
        return f"[{host}]" if ipaddress.ip_address(host).version == 6 else host
    except ValueError:
        return host.lower()


def _unspecified(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False
