"""Files and directories as UnixFS DAGs in the block store (SPEC §8)."""
