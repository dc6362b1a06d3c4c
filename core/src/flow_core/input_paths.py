"""Passing a task its parents' paths, however many there are.

A join after a 10,000-way foreach has 10,000 parents; spelled out on the command line they
would pass Linux's 128 KiB limit on one argument. Past a few kilobytes the list goes into
the datastore as a content-addressed blob and the command line carries ``@<key>`` instead,
which every compute backend can resolve, since every task reaches the datastore.
"""

from __future__ import annotations

from typing import Sequence

from .datastore.cas import ContentAddressedStore

INLINE_LIMIT = 4096
REFERENCE_MARK = "@"


def pack_input_paths(cas: ContentAddressedStore, paths: Sequence[str]) -> tuple[str, ...]:
    """The paths as the task command line carries them: inline when short, else by reference."""
    if sum(len(p) + 1 for p in paths) <= INLINE_LIMIT:
        return tuple(paths)
    (key,) = cas.save_blobs(["\n".join(paths).encode()])
    return (REFERENCE_MARK + key,)


def unpack_input_paths(cas: ContentAddressedStore, paths: Sequence[str]) -> tuple[str, ...]:
    """The inverse of `pack_input_paths`."""
    out: list[str] = []
    for path in paths:
        if path.startswith(REFERENCE_MARK):
            (blob,) = cas.load_blobs([path[len(REFERENCE_MARK):]])
            out.extend(blob.decode().split("\n"))
        elif path:
            out.append(path)
    return tuple(out)
