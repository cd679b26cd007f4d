"""A hostile peer for end-to-end tests: a real libp2p host speaking /mizu/sync/1.0.0 that
answers roots and tree nodes honestly from a repository, then misbehaves on blocks.

Usage: python -m tests.e2e.hostile_peer REPO MODE   (MODE: bad-hash, oversized, endless,
or forged: serve the repository as it is, after `forge_tree` put a forged message in it).
Prints its multiaddr, serves until SIGTERM.

Or, as a client that attacks a serving node with the worst frames each limit allows:
python -m tests.e2e.hostile_peer attack ADDRESS SUB   (prints a line per frame answered
or refused, until SIGTERM).

Or, as a puller that stops reading: python -m tests.e2e.hostile_peer stall ADDRESS SUB
STREAMS: walks the feed's tree, stops reading its connection, then on each of STREAMS
streams asks for the feed's blocks again and again; prints "stalled" and its peer id, and
waits for SIGTERM.
"""

from __future__ import annotations

import contextlib
import secrets
import sys
from pathlib import Path
from typing import Any

import trio
from multiaddr import Multiaddr

from mizu_core import Repository
from mizu_core.message import codec
from mizu_core.message.cid import CID, varint
from mizu_core.repo.repository import find_repository
from mizu_core.sync.host import new_host
from mizu_core.sync.protocol import MAX_FRAME, PROTOCOL_ID, FrameReader, encode_frame
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
    from mizu_core.feeds import subscriptions

    real = repo.publish([{"feed": "news", "title": "genuine"}]).cids[0]
    message = codec.decode(repo.block(real))
    message["title"] = "forged"
    data = codec.encode(message)
    forged = CID.for_block(data)
    with repo.store.writer() as txn:
        txn.put("blocks", forged.raw, data)
        subscriptions.add_records(txn, sub, [forged])
    return forged


def worst_frames(sub: CID) -> list[tuple[str, bytes]]:
    """A frame of each kind, as large as MAX_FRAME allows (its length prefix is added)."""
    huge_cid = "https://mizu.stream/v0/view-raw/z" + "2" * (MAX_FRAME - 200)  # base58: quadratic
    many = [CID.for_block(i.to_bytes(4, "big"), codec=0x55) for i in range(MAX_FRAME // 42 - 100)]
    content = b"\x00\x01\x55\x00" + varint(MAX_FRAME - 200) + b"x" * (MAX_FRAME - 200)
    identity = codec.encode({"op": "blocks", "cids": ["x"]}).replace(  # a 4 MiB identity CID
        b"\x61x", b"\xd8\x2a\x5a" + len(content).to_bytes(4, "big") + content)
    bodies = [
        ("query", codec.encode({"op": "query", "query": {"@select": "?t", "@where": {"@id": huge_cid, "title": "?t"}}})),
        ("query-many-iris", codec.encode({"op": "query", "query": {"@select": "?t", "@where": [
            {"@id": "https://mizu.stream/v0/view-raw/z" + "2" * 300 + str(i), "title": "?t"} for i in range(10_000)]}})),
        ("have-many", codec.encode({"op": "have", "sub": sub, "cids": many})),
        ("put-many", codec.encode({"op": "put", "sub": sub, "cids": many[:60_000], "blocks": [b"x"] * 60_000})),
        ("identity-cid", identity),
        ("garbage", secrets.token_bytes(MAX_FRAME)),
    ]
    return [(name, varint(len(body)) + body) for name, body in bodies if len(body) <= MAX_FRAME]


async def attack(address: str, sub: CID) -> None:
    """Send the worst frames again and again, each on a stream of its own (a server closes
    a stream after a frame it cannot read), two streams at a time."""
    from mizu_core.sync.host import dial
    from mizu_core.sync.node import open_stream

    frames = worst_frames(sub)
    host = new_host(secrets.token_bytes(32), None)
    async with host.run([Multiaddr("/ip4/127.0.0.1/tcp/0")]):
        peer = await dial(host, address, 10)

        async def one(name: str, frame: bytes) -> None:
            stream = await open_stream(host, peer, 10)
            try:
                await stream.write(frame)
                with trio.move_on_after(60):
                    try:
                        reply = await FrameReader(stream).read_frame()
                    except Exception as e:  # the server closed the stream: refused
                        reply = {"closed": type(e).__name__}
                    print(name, "answered" if reply is not None else "closed", flush=True)
            finally:
                with trio.move_on_after(1):
                    await stream.close()

        while True:
            for i in range(0, len(frames), 2):
                async with trio.open_nursery() as nursery:
                    for name, frame in frames[i : i + 2]:
                        nursery.start_soon(one, name, frame)


async def stall(address: str, sub: CID, streams: int) -> None:
    """Walk the feed's tree, stop reading the connection (Yamux's reader left waiting, so
    nothing more is taken from TCP), then ask for the feed's blocks on `streams` streams,
    request after request: the server's answers fill both sockets' buffers and then wait."""
    from mizu_core.feeds import prolly
    from mizu_core.sync.host import dial
    from mizu_core.sync.node import open_stream
    from mizu_core.sync.protocol import Blocks

    host = new_host(secrets.token_bytes(32), None)
    async with host.run([Multiaddr("/ip4/127.0.0.1/tcp/0")]):
        peer = await dial(host, address, 10)
        walk = await open_stream(host, peer, 10)
        reader = FrameReader(walk)

        async def ask(frame: dict[str, Any]) -> dict[str, Any]:
            await walk.write(encode_frame(frame))
            reply = await reader.read_frame()
            assert reply is not None and "error" not in reply, reply
            return reply

        (root,) = (await ask({"op": "roots", "subs": [sub]}))["roots"]
        frontier, records = [root], []
        while frontier:
            got = Blocks.parse(await ask({"op": "nodes", "sub": sub, "cids": frontier[:512]}), "server").pairs
            frontier = frontier[512:]
            for cid, data in got:
                node = prolly.decode(cid, data)
                (records if node.level == 0 else frontier).extend(node.entries)
        opened = [await open_stream(host, peer, 10) for _ in range(streams)]
        connection = walk.muxed_conn.secured_conn

        async def never(n: int = -1) -> bytes:
            await trio.sleep_forever()
            return b""

        connection.read = never  # Yamux's next read of the connection waits forever
        batches = [records[i : i + 512] for i in range(0, len(records), 512)]

        async def ask_forever(stream: Any) -> None:
            with contextlib.suppress(Exception):  # refused past the server's limit, or reset
                while True:
                    for batch in batches:
                        await stream.write(encode_frame({"op": "blocks", "cids": batch}))

        async with trio.open_nursery() as nursery:
            for stream in opened:
                nursery.start_soon(ask_forever, stream)
            print("stalled", host.get_id(), len(records), flush=True)
            await trio.sleep_forever()


if __name__ == "__main__":
    if sys.argv[1] == "attack":
        trio.run(attack, sys.argv[2], CID.parse(sys.argv[3]))
        sys.exit(0)
    if sys.argv[1] == "stall":
        trio.run(stall, sys.argv[2], CID.parse(sys.argv[3]), int(sys.argv[4]))
        sys.exit(0)
    path, mode = Path(sys.argv[1]), sys.argv[2]
    repository = Repository.open(find_repository(str(path)))
    trio.run(main, repository, mode)
