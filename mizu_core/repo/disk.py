"""A full disk, told apart and said in one line: by the store (LMDB's errors), the spool
and config writes (OSError), and the CLI's last resort."""

from __future__ import annotations

import errno
import os

from mizu_core.errors import StoreError

FULL_DISK = (os.strerror(errno.ENOSPC), os.strerror(errno.EDQUOT))
NEARLY_FULL = 16 << 20  # bytes left on a device that an EIO of LMDB takes for a full one


def room(path: str) -> int:
    """Bytes an unprivileged user may still write on the device holding `path` (a lot
    where it cannot be told)."""
    try:
        st = os.statvfs(path)
    except (OSError, AttributeError):
        return 1 << 62
    return st.f_bavail * st.f_frsize


def no_space(folder: str | None, quota: bool = False) -> StoreError:
    """A full disk (ENOSPC, EDQUOT), said in one line naming the folder it was writing
    (when known). The one wording of it: `full_disk`, and the store's own errors."""
    where = f" holding {folder}" if folder is not None else ""
    why = " (disk quota exceeded)" if quota else ""
    return StoreError(f"no space left on the device{where}{why}")


def full_disk(error: BaseException, folder: str | None) -> StoreError | None:
    """`no_space` for an OSError that is a full disk (ENOSPC, EDQUOT) while writing in
    `folder`; None for any other error."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return no_space(folder, quota=error.errno == errno.EDQUOT)
    return None
