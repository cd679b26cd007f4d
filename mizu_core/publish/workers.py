"""Forked workers fed through pipes: tasks go out in turn, results come back in order.

They are plain forks, not a `multiprocessing.Pool`: its handler threads would take CPU
from this process, which runs the store meanwhile. A worker runs a function it inherits
through the fork (nothing but tasks and results is pickled), and never touches the store
(an LMDB environment must not cross a fork).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import struct
from collections import deque
from collections.abc import Callable
from typing import Any

from mizu_core.errors import StoreError

_FRAME = struct.Struct("<Q")  # a pickle's length, before it on a pipe
_PIPE_SIZE = 1 << 20  # Linux's default limit for unprivileged processes

Work = Callable[[Any], Any]  # what a worker does to each task: its result is pickled back


def cores() -> int:
    """How many cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def can_fork() -> bool:
    return hasattr(os, "fork")


class Pool:
    """`size` forked workers, each running the function `work()` returned for it here
    just before it forked (so it may hold what it opened then, a spool file, say), at
    `nice`.

    This process never blocks on a pipe: it writes what fits and reads whatever arrives
    while it waits for a result, so neither side can wait on the other forever."""

    def __init__(self, size: int, work: Callable[[], Work], nice: int) -> None:
        self._workers: list[_Worker] = []
        self._submitted = self._collected = 0
        try:
            for _ in range(size):
                self._workers.append(_Worker.fork(self._workers, work(), nice))
        except BaseException:
            self.close()
            raise

    def submit(self, task: Any) -> None:
        worker = self._workers[self._submitted % len(self._workers)]
        self._submitted += 1
        data = pickle.dumps(task, 5)
        worker.outgoing += _FRAME.pack(len(data))
        worker.outgoing += data
        worker.send()

    def result(self) -> Any:
        """The result of the earliest task submitted and not yet collected."""
        worker = self._workers[self._collected % len(self._workers)]
        self._collected += 1
        while not worker.results:
            self._wait()
        return pickle.loads(worker.results.popleft())

    def _wait(self) -> None:
        poll = select.poll()
        by_fd = {}
        for w in self._workers:
            poll.register(w.results_fd, select.POLLIN)
            by_fd[w.results_fd] = w
            if w.outgoing:
                poll.register(w.tasks_fd, select.POLLOUT)
                by_fd[w.tasks_fd] = w
        for fd, _ in poll.poll():
            worker = by_fd[fd]
            if fd == worker.tasks_fd:
                worker.send()
            else:
                worker.receive()

    def close(self) -> None:
        for w in self._workers:
            w.stop()
        self._workers = []


class _Worker:
    """One forked worker, as this process sees it: tasks go in on one pipe, results come
    back on another."""

    def __init__(self, pid: int, tasks_fd: int, results_fd: int) -> None:
        self.pid, self.tasks_fd, self.results_fd = pid, tasks_fd, results_fd
        self.outgoing = bytearray()
        self.incoming = bytearray()
        self.results: deque[bytes] = deque()

    @classmethod
    def fork(cls, siblings: list[_Worker], work: Work, nice: int) -> _Worker:
        tasks_r, tasks_w = os.pipe()
        results_r, results_w = os.pipe()
        parent = os.getpid()
        import fcntl

        pid = os.fork()
        if pid == 0:  # the worker: it must never return into the caller's code
            status = 1
            try:
                # Only its own pipe ends stay open, so each side sees the other end.
                for fd in (tasks_w, results_r, *(f for s in siblings for f in (s.tasks_fd, s.results_fd))):
                    os.close(fd)
                if nice:
                    os.nice(nice)
                _serve(parent, tasks_r, results_w, work)
                status = 0
            finally:
                os._exit(status)
        os.close(tasks_r)
        os.close(results_w)
        for fd in (tasks_w, results_r):
            os.set_blocking(fd, False)
            with contextlib.suppress(OSError, AttributeError):
                # Room for a few tasks, so a worker rarely waits for this process to read.
                fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
        return cls(pid, tasks_w, results_r)

    def send(self) -> None:
        try:
            sent = os.write(self.tasks_fd, self.outgoing)
        except BlockingIOError:
            return
        except BrokenPipeError:
            raise _died() from None
        del self.outgoing[:sent]

    def receive(self) -> None:
        try:
            data = os.read(self.results_fd, 1 << 20)
        except BlockingIOError:
            return
        if not data:
            raise _died()
        self.incoming += data
        while len(self.incoming) >= _FRAME.size:
            (size,) = _FRAME.unpack_from(self.incoming)
            end = _FRAME.size + size
            if len(self.incoming) < end:
                break
            self.results.append(bytes(self.incoming[_FRAME.size : end]))
            del self.incoming[:end]

    def stop(self) -> None:
        for fd in (self.tasks_fd, self.results_fd):
            os.close(fd)
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(self.pid, 0)


def _died() -> StoreError:
    return StoreError("a worker preparing messages died")


def _serve(parent: int, tasks: int, results: int, work: Work) -> None:
    """A worker's life: run `work` on each task that comes in until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    try:
        import ctypes

        # Die with the parent: a `mizu put` killed mid-way must not leave workers behind
        # (Linux; elsewhere they end when their pipe closes).
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        return
    with os.fdopen(tasks, "rb") as incoming:
        while head := incoming.read(_FRAME.size):
            (size,) = _FRAME.unpack(head)
            data = pickle.dumps(work(pickle.loads(incoming.read(size))), 5)
            _write_all(results, _FRAME.pack(len(data)) + data)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
