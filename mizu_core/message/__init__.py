"""Messages: canonical DAG-CBOR and CIDs, reserved fields, signatures, keys, triples."""
