"""A lossy TCP proxy on 127.0.0.1, for end-to-end tests of sync over a bad link where the
kernel has no `tc netem` (no network namespaces or qdiscs needed).

Usage: python tests/e2e/lossy_proxy.py --target 127.0.0.1:PORT [--listen PORT] [--delay S]
       [--loss P] [--stall S] [--mss BYTES] [--max-chunk BYTES] [--window BYTES] [--cut-after BYTES]
       [--cuts N] [--cut-mode reset|close|stall] [--seed N]
Prints the port it listens on as one line on stdout, then forwards every connection to
the target until SIGTERM; one line on stderr per connection closed or cut.

The link it emulates, in each direction of each connection:

- Bytes are read from the sender in chunks of random size (1 to --max-chunk bytes), so
  frames arrive split at arbitrary places, as over a real network.
- Each chunk is delivered --delay seconds after it was read (a one-way delay; reads go on
  meanwhile, so the delay does not cap throughput by itself), and never before the chunk
  read before it: order is kept, as TCP keeps it.
- Loss as TCP experiences it: TCP never loses bytes, it retransmits, and the receiver
  holds everything after the lost segment until the retransmission arrives. A chunk is
  taken as segments of --mss bytes, each lost with probability --loss; a chunk with a
  lost segment is delivered --stall seconds late (a retransmission timeout, 200 ms
  minimum on Linux), and every chunk after it waits for it.
- At most --window bytes are in flight (read, not yet delivered): past that the proxy
  stops reading, the sender's socket buffers fill and it blocks, as a sender does when its
  congestion window is used up. This is what makes stalls cost throughput: while a lost
  chunk waits, the sender soon cannot send either.
- --cut-after N: once N bytes have been delivered towards the client (the dialler) on a
  connection, it is cut: both sockets are reset (--cut-mode reset, RST, as when a router
  or NAT box drops it), closed (close, FIN), or left open with nothing delivered any more
  either way (stall: a route gone silent). Only the first --cuts connections are cut
  (default: all of them).

--seed makes the chunk sizes and losses of each connection the same from run to run
(the timing of the reads still varies).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import signal
import socket
import struct
import sys
import time


class Link:
    """One connection's two directions, and its cut."""

    def __init__(self, args: argparse.Namespace, number: int) -> None:
        self.args = args
        self.number = number
        self.rng = random.Random(None if args.seed is None else args.seed * 1_000_003 + number)
        self.cut_after = args.cut_after if args.cut_after is not None and (
            args.cuts is None or number < args.cuts) else None
        self.delivered = {"down": 0, "up": 0}
        self.cut = asyncio.Event()
        self.sockets: list[asyncio.StreamWriter] = []

    async def pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, direction: str) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        room = asyncio.Condition()
        in_flight = 0

        def open_window() -> bool:
            return in_flight < self.args.window

        async def read() -> None:
            nonlocal in_flight
            last_due = 0.0
            while True:
                async with room:
                    await room.wait_for(open_window)
                data = await reader.read(self.rng.randint(1, self.args.max_chunk))
                now = time.monotonic()
                if not data:
                    await queue.put((max(last_due, now), b""))  # end of stream, after the rest
                    return
                segments = -(-len(data) // self.args.mss)
                lost = self.rng.random() < 1 - (1 - self.args.loss) ** segments
                last_due = max(last_due, now + self.args.delay + (self.args.stall if lost else 0.0))
                in_flight += len(data)
                await queue.put((last_due, data))

        async def deliver() -> None:
            nonlocal in_flight
            while True:
                due, data = await queue.get()
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                if not data:
                    with contextlib.suppress(OSError):
                        writer.write_eof()
                    return
                if direction == "down" and self.cut_after is not None:
                    left = self.cut_after - self.delivered["down"]
                    if len(data) >= left:
                        writer.write(data[:left])
                        self.delivered["down"] += left
                        with contextlib.suppress(OSError):
                            await writer.drain()
                        self.cut.set()
                        return
                writer.write(data)
                await writer.drain()
                self.delivered[direction] += len(data)
                async with room:
                    in_flight -= len(data)
                    room.notify_all()

        async with asyncio.TaskGroup() as group:
            group.create_task(read())
            group.create_task(deliver())

    async def run(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        host, port = self.args.target.rsplit(":", 1)
        try:
            target_r, target_w = await asyncio.open_connection(host, int(port))
        except OSError as e:
            print(f"connection {self.number}: cannot reach {self.args.target}: {e}", file=sys.stderr, flush=True)
            client_w.close()
            return
        self.sockets = [client_w, target_w]
        pumps = [asyncio.create_task(self.pump(client_r, target_w, "up")),
                 asyncio.create_task(self.pump(target_r, client_w, "down"))]
        cut = asyncio.create_task(self.cut.wait())
        what = "closed"
        while True:
            done, _ = await asyncio.wait([*pumps, cut], return_when=asyncio.FIRST_COMPLETED)
            if cut in done:
                what = f"cut ({self.args.cut_mode})"
                if self.args.cut_mode == "stall":  # silent until either end gives up
                    for task in pumps:
                        task.cancel()
                    await asyncio.gather(*pumps, return_exceptions=True)
                    ends = [asyncio.create_task(r.read()) for r in (client_r, target_r)]
                    await asyncio.wait(ends, return_when=asyncio.FIRST_COMPLETED)
                    for task in ends:
                        task.cancel()
                break
            if any(t.exception() is not None for t in pumps if t.done()):
                what = "broken"  # one side reset: pass it on
                break
            if all(t.done() for t in pumps):  # both ends closed, all delivered
                break
        self.close(reset=what == "broken" or (what != "closed" and self.args.cut_mode == "reset"))
        for task in [*pumps, cut]:
            task.cancel()
        await asyncio.gather(*pumps, cut, return_exceptions=True)
        print(f"connection {self.number}: {what} after {self.delivered['down']} bytes down, "
              f"{self.delivered['up']} up", file=sys.stderr, flush=True)

    def close(self, reset: bool) -> None:
        for writer in self.sockets:
            sock = writer.get_extra_info("socket")
            if reset and sock is not None:  # linger 0: close sends RST, not FIN
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.close()


async def main(args: argparse.Namespace) -> None:
    count = 0

    running: set[asyncio.Task[None]] = set()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal count
        link = Link(args, count)
        count += 1
        task = asyncio.current_task()
        assert task is not None
        running.add(task)
        try:
            await link.run(reader, writer)
        except asyncio.CancelledError:  # stopped: drop the connection quietly
            link.close(reset=True)
        finally:
            running.discard(task)

    server = await asyncio.start_server(accept, "127.0.0.1", args.listen)
    print(server.sockets[0].getsockname()[1], flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        await stop.wait()
        for task in list(running):
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="A lossy, delaying TCP proxy on 127.0.0.1.")
    parser.add_argument("--target", required=True, help="HOST:PORT to forward to")
    parser.add_argument("--listen", type=int, default=0, help="port (default: any free one)")
    parser.add_argument("--delay", type=float, default=0.05, help="one-way delay, seconds")
    parser.add_argument("--loss", type=float, default=0.0, help="probability a chunk is lost")
    parser.add_argument("--stall", type=float, default=0.2, help="retransmission delay of a lost chunk")
    parser.add_argument("--max-chunk", type=int, default=8192, help="largest chunk, bytes")
    parser.add_argument("--mss", type=int, default=1460, help="segment size the loss applies to")
    parser.add_argument("--window", type=int, default=65536, help="bytes in flight per direction")
    parser.add_argument("--cut-after", type=int, default=None, help="cut after this many bytes towards the client")
    parser.add_argument("--cuts", type=int, default=None, help="cut only the first N connections")
    parser.add_argument("--cut-mode", choices=("reset", "close", "stall"), default="reset")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    if args.target.rsplit(":", 1)[0] != "127.0.0.1":
        parser.error("the target must be on 127.0.0.1")
    return args


if __name__ == "__main__":
    asyncio.run(main(parse(sys.argv[1:])))
