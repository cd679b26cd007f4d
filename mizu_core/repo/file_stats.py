"""What `add` recorded of each file it read (`file_stats`), so that, as with git's index, a
file whose size, times and inode have not changed is not read again."""

from __future__ import annotations

import os
from dataclasses import dataclass

from mizu_core.message.cid import CID
from mizu_core.repo.kv import Txn
from mizu_core.repo.tables import FILE_STAT, FILE_STATS, file_stat_key


@dataclass(frozen=True, slots=True)
class FileStat:
    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    tsize: int  # the size of the file's DAG, as a link to its root gives it
    root: CID

    @classmethod
    def of(cls, st: os.stat_result, tsize: int, root: CID) -> FileStat:
        return cls(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, tsize, root)

    def matches(self, st: os.stat_result) -> bool:
        """Whether the file, stat'ed now, has the size, times and inode recorded."""
        return (self.size, self.mtime_ns, self.ctime_ns, self.inode) == (
            st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def read(txn: Txn, path: str | os.PathLike[str], raw_leaves: bool) -> FileStat | None:
    """What was recorded of the file at absolute `path` added in this layout, if anything."""
    value = txn.get(FILE_STATS, file_stat_key(path, raw_leaves))
    if value is None:
        return None
    size, mtime_ns, ctime_ns, inode, tsize = FILE_STAT.unpack_from(value)
    return FileStat(size, mtime_ns, ctime_ns, inode, tsize, CID(bytes(value[FILE_STAT.size :])))


def write(txn: Txn, path: str | os.PathLike[str], raw_leaves: bool, stat: FileStat) -> None:
    numbers = FILE_STAT.pack(stat.size, stat.mtime_ns, stat.ctime_ns, stat.inode, stat.tsize)
    txn.put(FILE_STATS, file_stat_key(path, raw_leaves), numbers + stat.root.raw)
