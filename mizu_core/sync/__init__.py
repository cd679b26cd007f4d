"""Peer-to-peer sync: subscriptions, their trees, the wire protocol and the libp2p node."""
