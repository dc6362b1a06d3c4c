"""The backend class: replace this in-memory placeholder with your store.

It passes the storage conformance suite, so the template's tests pass as they are, but each
process has its own memory: a run's tasks cannot share it. A real backend keeps its blobs
where every process of a run reaches them.
"""

from __future__ import annotations

from typing import Iterable, Iterator, Mapping

from flow_core.plugin_api import Blob, BlobNotFound, Settings, StorageBackend


class MyPluginStorage(StorageBackend):
    name = "my-plugin"  # must equal the name plugin.py registers

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> MyPluginStorage:
        return cls()

    def describe(self) -> str:
        return "memory of this process"

    def put_many(self, items: Iterable[tuple[str, Blob]], overwrite: bool = True) -> None:
        for key, blob in items:
            if overwrite or key not in self.blobs:
                self.blobs[key] = bytes(blob)

    def get_many(self, keys: Iterable[str]) -> Mapping[str, bytes]:
        keys = list(keys)
        missing = [key for key in keys if key not in self.blobs]
        if missing:
            raise BlobNotFound(missing[0])
        return {key: self.blobs[key] for key in keys}

    def exists_many(self, keys: Iterable[str]) -> set[str]:
        return {key for key in keys if key in self.blobs}

    def list(self, prefix: str = "") -> Iterator[str]:
        return iter(sorted(key for key in self.blobs if key.startswith(prefix)))

    def delete_many(self, keys: Iterable[str]) -> None:
        for key in keys:
            self.blobs.pop(key, None)
