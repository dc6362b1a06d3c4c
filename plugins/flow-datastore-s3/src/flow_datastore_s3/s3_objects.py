"""The values Metaflow's `S3` client hands out and takes, under Metaflow's names.

A flow ported from Metaflow changes only its imports: `S3Object` has the same properties,
`S3PutObject` / `S3GetObject` describe uploads and ranged downloads, and the errors keep
Metaflow's names while being Flow errors (`FlowError`), so ``except FlowError`` catches them as
``except MetaflowException`` did.
"""

from __future__ import annotations

import json
import os
from typing import NamedTuple

from flow_core.plugin_api import DataStoreError, NotFound

#: The S3 metadata entry Metaflow keeps user metadata in (JSON): objects stay readable by both.
USER_ATTRIBUTES = "metaflow-user-attributes"


class MetaflowS3Exception(DataStoreError):
    """S3 refused or failed an operation of the `S3` client."""


class MetaflowS3NotFound(MetaflowS3Exception, NotFound):
    """A key (or a local file to upload) does not exist. Also a `KeyError`, like Flow's other
    "not found" errors."""


class MetaflowS3AccessDenied(MetaflowS3Exception):
    """S3 denied access to a key."""


class MetaflowS3URLException(MetaflowS3Exception):
    """A key or root that is not a usable S3 URL for this client."""


class MetaflowS3InvalidRange(MetaflowS3Exception):
    """A ranged download asked for bytes the object does not have."""


class RangeInfo(NamedTuple):
    """What part of an object a ranged download fetched."""

    total_size: int
    request_offset: int = 0
    request_length: int = -1


class S3PutObject(NamedTuple):
    """One upload: ``value`` (str/bytes) for `put_many`, ``path`` for `put_files`."""

    key: str
    value: str | bytes | None = None
    path: str | None = None
    content_type: str | None = None
    encryption: str | None = None
    metadata: dict[str, str] | None = None


class S3GetObject(NamedTuple):
    """A ranged download: ``length`` bytes from ``offset``; a negative length counts from the end."""

    key: str
    offset: int = 0
    length: int | None = None


class S3Object:
    """An object (or, from `list_paths`, a prefix) in S3, with an optional local copy.

    ``key`` is the URL relative to what was asked for (the client's root, or the listed
    prefix), or the whole URL when there is nothing to be relative to.
    """

    def __init__(self, prefix: str | None, url: str, path: str | None = None, size: int | None = None,
                 content_type: str | None = None, metadata: dict[str, str] | None = None,
                 range_info: RangeInfo | None = None, last_modified: int | None = None,
                 encryption: str | None = None):
        self._url = url
        self._path = path
        self._size = os.stat(path).st_size if path else size
        self._content_type = content_type
        self._last_modified = last_modified
        self._encryption = encryption
        self._range_info = range_info
        self._metadata = None
        if metadata and USER_ATTRIBUTES in metadata:
            self._metadata = json.loads(metadata[USER_ATTRIBUTES])
        if prefix is None or prefix == url:
            self._prefix, self._key = None, url
        else:
            self._prefix, self._key = prefix, url[len(prefix.rstrip("/")) + 1:].rstrip("/")

    @property
    def exists(self) -> bool:
        """Whether this is an object in S3 (False for a missing key or a listed prefix)."""
        return self._size is not None

    @property
    def downloaded(self) -> bool:
        return bool(self._path)

    @property
    def url(self) -> str:
        return self._url

    @property
    def prefix(self) -> str | None:
        return self._prefix

    @property
    def key(self) -> str:
        return self._key

    @property
    def path(self) -> str | None:
        """The local copy, removed when the `S3` context exits; None if not downloaded."""
        return self._path

    @property
    def blob(self) -> bytes | None:
        if not self._path:
            return None
        with open(self._path, "rb") as file:
            return file.read()

    @property
    def text(self) -> str | None:
        blob = self.blob
        return None if blob is None else blob.decode("utf-8", errors="replace")

    @property
    def size(self) -> int | None:
        return self._size

    @property
    def has_info(self) -> bool:
        return any(v is not None for v in (self._content_type, self._metadata, self._range_info, self._encryption))

    @property
    def metadata(self) -> dict[str, str] | None:
        """The user metadata given at upload, or None."""
        return self._metadata

    @property
    def content_type(self) -> str | None:
        return self._content_type

    @property
    def encryption(self) -> str | None:
        return self._encryption

    @property
    def range_info(self) -> RangeInfo | None:
        return self._range_info

    @property
    def last_modified(self) -> int | None:
        """Unix time of the last write, when known."""
        return self._last_modified

    def __str__(self) -> str:
        if self._path:
            return f"<S3Object {self._url} ({self._size} bytes, local)>"
        if self._size is not None:
            return f"<S3Object {self._url} ({self._size} bytes, in S3)>"
        return f"<S3Object {self._url} (object does not exist)>"

    __repr__ = __str__
