"""Publishing: messages in, validated, signed, mapped to triples and stored in batches.

`pipeline.py` is the entry (`publish`, which `Repository.publish` is); `inputs.py` what
it takes besides dicts (JSON text, NDJSON blocks); `stages.py` preparing on every core
(`workers.py` the forked workers, `spool.py` where records wait, `records.py` what a
record is); `validation.py` and `signing.py` the two stages; `batches.py` storing, through
`repo`'s `Ingest`, in write transactions bounded in messages and memory.
"""

from mizu_core.publish.pipeline import PublishResult, Rejected, publish

__all__ = ["PublishResult", "Rejected", "publish"]
