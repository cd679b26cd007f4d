"""Named peers, like git remotes: `remote.<name>.address` in the repository config."""

from __future__ import annotations

import re

from mizu_core.errors import NotFound, UsageError
from mizu_core.repo.repository import Repository

_NAME = re.compile(r"[A-Za-z0-9_-]+")
_ADDRESS = re.compile(r"(/[^/]+/[^/]+)+/p2p/[1-9A-HJ-NP-Za-km-z]+")


def remote_addresses(repo: Repository) -> dict[str, str]:
    remotes = repo.config.section("remote")
    return {
        name: str(value["address"])
        for name, value in sorted(remotes.items())
        if isinstance(value, dict) and value.get("address")
    }


def check_address(address: str) -> str:
    if not _ADDRESS.fullmatch(address):
        raise UsageError(
            f"'{address}' is not a peer multiaddr",
            hint="it needs the peer id, as mizu serve prints: /ip4/127.0.0.1/tcp/4737/p2p/12D3KooW…",
        )
    return address


def add_remote(repo: Repository, name: str, address: str) -> None:
    if not _NAME.fullmatch(name):
        raise UsageError(f"'{name}' is not a remote name (letters, digits, '-' and '_')")
    if name in remote_addresses(repo):
        raise UsageError(f"remote '{name}' already exists", hint=f"remove it first: mizu remote remove {name}")
    file = _repo_file(repo)
    file.set(f"remote.{name}.address", check_address(address))


def remove_remote(repo: Repository, name: str) -> None:
    if name not in remote_addresses(repo) or not _repo_file(repo).unset(f"remote.{name}"):
        raise NotFound(f"no remote named '{name}'")


def _repo_file(repo: Repository):  # type: ignore[no-untyped-def]
    if repo.config.repo_file is None:
        raise UsageError("a memory repository has no remotes")
    return repo.config.repo_file


def resolve_peers(repo: Repository, given: list[str]) -> list[str]:
    """Multiaddrs to contact: the names or addresses given, else every remote."""
    remotes = remote_addresses(repo)
    if not given:
        return list(remotes.values())
    peers = []
    for item in given:
        if item.startswith("/"):
            peers.append(check_address(item))
        elif item in remotes:
            peers.append(remotes[item])
        else:
            raise UsageError(f"no remote named '{item}'", hint="list them: mizu remote list")
    return peers
