"""Folders for the benchmarks' runs, deleted when the benchmark ends rather than after each run.

Why not at once: on ext4 without a journal (this machine's root filesystem, like many cloud
images'), a new file may not take an inode freed in the last minute, or five minutes while the
inode's table block is not yet written back, so that a crash cannot mix old and new. The
allocator reads each such inode's deletion time in turn before it passes on. A run's thousands
of small files deleted just before the next run therefore tax every file the next run creates:
after one Flow foreach of 1,000 was deleted, the next one spent 7% of its CPU time in that check
(perf: ext4's ``recently_deleted``), and it ran about a second longer. Metaflow's runs create
more files than Flow's. With deletion left to the end, no measured run pays for the one before.

A file of 16 MiB or more (an array's blob) is deleted at once: it frees one inode and much disk.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LARGE_FILE = 16 * 1024 * 1024
_kept: list[Path] = []


def folder_until_exit(prefix: str = "flow-bench-") -> Path:
    """A new temporary folder, deleted when the benchmark ends (after anything the benchmark
    registered with atexit later, such as stopping a server that writes there)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    _kept.append(folder)
    return folder


@contextmanager
def scratch_folder(prefix: str = "flow-bench-") -> Iterator[Path]:
    """A new temporary folder for one run; its large files go when the block ends, the rest
    when the benchmark does."""
    folder = folder_until_exit(prefix)
    try:
        yield folder
    finally:
        _delete_large_files(folder)


def _delete_large_files(folder: Path) -> None:
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            try:
                if os.lstat(path).st_size >= LARGE_FILE:
                    os.unlink(path)
            except OSError:
                pass


@atexit.register
def _delete_kept() -> None:
    while _kept:
        shutil.rmtree(_kept.pop(), ignore_errors=True)
