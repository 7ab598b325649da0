"""One writer per artifacts folder: an exclusive lock held while a run builds there.

The lock is `flock` on `<folder>/.lock`, so the operating system drops it when its process
dies (a killed run never leaves a stale lock behind; the PID written in the file is only for
messages). Inside one process the lock is re-entrant per thread: a run that builds a variant
inside its experiment's folder takes it again without blocking itself, while another thread
(a second app session) waits like another process would.
"""
from __future__ import annotations

import fcntl
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from .errors import DwfError

LOCK = ".lock"
_registry = threading.Lock()
_held: dict[str, tuple[threading.RLock, list]] = {}   # folder -> (thread lock, [fd, depth])


class FolderBusy(DwfError):
    """Another run holds the folder's lock and the caller chose not to wait."""


def holder(folder: str | Path) -> str:
    """Who holds (or last held) the lock, for messages: 'PID 123 (since 12:00:01)' or 'another run'."""
    try:
        pid, since = (Path(folder) / LOCK).read_text().split()[:2]
        return f"PID {pid} (since {time.strftime('%H:%M:%S', time.localtime(float(since)))})"
    except (OSError, ValueError):
        return "another run"


@contextmanager
def locked(folder: str | Path, wait: bool = True,
           on_wait: Callable[[str], None] = lambda message: None) -> Iterator[None]:
    """Hold `folder`'s lock for the block (creating the folder). When another process or thread
    holds it: with `wait`, call `on_wait(message)` once and block until it is free; without,
    raise `FolderBusy` naming the holder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key = str(folder.resolve())
    with _registry:
        thread_lock, slot = _held.setdefault(key, (threading.RLock(), [None, 0]))
    if not thread_lock.acquire(blocking=False):
        if not wait:
            raise FolderBusy(_busy(folder, "another thread of this process"))
        on_wait(_waiting(folder, "another thread of this process"))
        thread_lock.acquire()
    try:
        if slot[1] == 0:
            slot[0] = _acquire(folder, wait, on_wait)
        slot[1] += 1
        try:
            yield
        finally:
            slot[1] -= 1
            if slot[1] == 0:
                fcntl.flock(slot[0], fcntl.LOCK_UN)
                os.close(slot[0])
                slot[0] = None
    finally:
        thread_lock.release()


def _acquire(folder: Path, wait: bool, on_wait: Callable[[str], None]) -> int:
    fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            who = holder(folder)
            if not wait:
                raise FolderBusy(_busy(folder, who)) from None
            on_wait(_waiting(folder, who))
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {time.time():.0f}\n".encode(), 0)
        return fd
    except BaseException:
        os.close(fd)
        raise


def _busy(folder: Path, who: str) -> str:
    return (f"{folder} is being built by {who}; wait for that run to finish, or give this one "
            "another --artifacts folder or --seed")


def _waiting(folder: Path, who: str) -> str:
    return f"waiting for {who}, which is building {folder} (its finished stages will be reused)"


__all__ = ["FolderBusy", "holder", "locked"]
