"""A hostile peer for end-to-end tests: a real libp2p host speaking /mizu/sync/1.0.0 that
answers roots and tree nodes honestly from a repository, then misbehaves on blocks.

Usage: python -m tests.e2e.hostile_peer REPO MODE   (MODE: bad-hash, oversized, endless,
or forged: serve the repository as it is, after `forge_tree` put a forged message in it).
Prints its multiaddr, serves until SIGTERM.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path
from typing import Any

import trio
from multiaddr import Multiaddr

from mizu_core.message import codec
from mizu_core.message.cid import CID
from mizu_core.repo.repository import Repository, find_repository
from mizu_core.sync.host import new_host
from mizu_core.sync.protocol import PROTOCOL_ID, FrameReader, encode_frame
from mizu_core.sync.server import Server


async def main(repo: Repository, mode: str) -> None:
    server = Server(repo)
    host = new_host(secrets.token_bytes(32), None)

    async def handler(stream: Any) -> None:
        reader = FrameReader(stream)
        while (frame := await reader.read_frame()) is not None:
            reply = server.answer(frame)
            if frame.get("op") == "blocks":
                if mode == "oversized":
                    await stream.write(b"\xff\xff\xff\x7f")  # a 256 MiB frame
                    await trio.sleep_forever()
                if mode == "endless":
                    await stream.write(b"\x80\x80\x80\x01")  # 2 MiB promised, a trickle sent
                    while True:
                        await stream.write(b"x")
                        await trio.sleep(0.05)
                if mode == "bad-hash":  # flip a bit in every block
                    reply["blocks"] = [d[:-1] + bytes([d[-1] ^ 1]) for d in reply["blocks"]]
            await stream.write(encode_frame(reply))

    host.set_stream_handler(PROTOCOL_ID, handler)
    async with host.run([Multiaddr("/ip4/127.0.0.1/tcp/0")]):
        print(host.get_addrs()[0], flush=True)
        await trio.sleep_forever()


def forge_tree(repo: Repository, sub: CID) -> CID:
    """Put a forged signed message (content changed after signing) into the tree of `sub`."""
    from mizu_core.sync import subscriptions

    real = repo.publish([{"feed": "news", "title": "genuine"}]).cids[0]
    message = codec.decode(repo.block(real))
    message["title"] = "forged"
    data = codec.encode(message)
    forged = CID.for_block(data)
    with repo.store.writer() as txn:
        txn.put("blocks", forged.raw, data)
        subscriptions.add_records(txn, sub, [forged])
    return forged


if __name__ == "__main__":
    path, mode = Path(sys.argv[1]), sys.argv[2]
    repository = Repository.open(find_repository(str(path)))
    trio.run(main, repository, mode)
