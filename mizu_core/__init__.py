"""Mizu: signed, content-addressed JSON messages in a triple store, synced between peers."""

__version__ = "0.1.0"
