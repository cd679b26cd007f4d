"""The repository on disk: config, identity, LMDB block store and triple index, upkeep."""
