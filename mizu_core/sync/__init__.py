"""Peer-to-peer sync: the wire protocol, its asking and answering ends, and the libp2p node;
what a feed is lives in `mizu_core.feeds`."""
