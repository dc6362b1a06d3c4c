"""The buffers large values are read into.

A value of hundreds of megabytes is read into one buffer of its size, which then backs the
value (a numpy array loads as a view of it). A ``bytearray`` of that size is first zero-filled,
page by page, and then written again by the read. A private anonymous mapping whose pages are
populated in one call is written once: filling 128 MiB from the page cache took 135 ms as a
bytearray and 68 ms so, and 1 GiB 1.35 s and 0.79 s, on a virtual machine where each page
fault costs microseconds.

The pages are not asked to be huge ones: where the hypervisor takes back the memory a guest
frees (free page reporting), freed huge pages go back to it first, and taking them again cost
more than all the faults saved (1 GiB: 2.8 s against 0.79 s, a few seconds after the last run).

Where the mapping or the advice is not available (another OS, an older kernel) the buffer is a
plain mapping or a bytearray: slower, never wrong.
"""

from __future__ import annotations

import mmap
import sys
from typing import Union

#: Smaller buffers are bytearrays: a mapping's system calls cost more than they save.
MAPPED_FROM = 4 * 1024 * 1024
#: madvise(2) advice Python's mmap module may not name (Linux 5.14).
_POPULATE_WRITE = getattr(mmap, "MADV_POPULATE_WRITE", 23 if sys.platform.startswith("linux") else None)

WritableBuffer = Union[bytearray, mmap.mmap]


def writable_buffer(size: int) -> WritableBuffer:
    """A zeroed, writable buffer of ``size`` bytes, private to this process (a fork copies it
    on write, as any memory)."""
    if size < MAPPED_FROM:
        return bytearray(size)
    try:
        buffer = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    except (AttributeError, TypeError, OSError, ValueError):  # no such flags here (Windows)
        return bytearray(size)
    if _POPULATE_WRITE is not None:
        try:
            buffer.madvise(_POPULATE_WRITE)
        except (OSError, ValueError):  # an older kernel: the pages come one fault at a time
            pass
    return buffer


def writable_copy(data: bytes | bytearray | memoryview) -> WritableBuffer:
    """A writable copy of ``data`` in a buffer from `writable_buffer`."""
    view = memoryview(data).cast("B")
    buffer = writable_buffer(view.nbytes)
    memoryview(buffer)[:] = view
    return buffer
