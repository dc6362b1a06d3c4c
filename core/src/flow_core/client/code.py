"""`run.code`: the code package a run's tasks ran from, as Metaflow's ``MetaflowCode``.

Flow builds the package only when tasks run away from the laptop (see
`flow_core.engine.code_package`), and the engine names it in the ``code-package`` metadata
field of each task it ran from it. A run without one has ``run.code is None``, as in Metaflow.
"""

from __future__ import annotations

import io
import json
import tarfile
from typing import Any

from flow_core.errors import DataStoreError

#: What the package's blob is named by, in the metadata field's JSON.
PACKAGE_PREFIX = "code-packages"
USER_FOLDER = "flow"


class FlowCode:
    """One code package: ``path`` (where it is stored), ``info``, ``flowspec`` (the flow
    file's text) and ``tarball`` (a ``tarfile.TarFile`` over all of it)."""

    def __init__(self, field: str, storage: Any):
        info = json.loads(field)
        self._sha = info.get("sha") or info.get("sha256")
        self._key = info.get("key") or f"{PACKAGE_PREFIX}/{self._sha}.tar.gz"
        self._storage = storage
        self._path = info.get("location") or storage.location(self._key) or self._key
        self._ds_type = info.get("ds_type")
        self._flow_file = info.get("flow_file")
        self._tar: tarfile.TarFile | None = None

    @property
    def path(self) -> str:
        """Where the package is stored (an ``s3://`` URL on S3)."""
        return self._path

    @property
    def tarball(self) -> tarfile.TarFile:
        if self._tar is None:
            try:
                blob = self._storage.get(self._key)
            except Exception as exc:  # the storage's own error for a missing blob
                raise DataStoreError(f"the code package {self._path} cannot be read ({exc}); "
                                     "it may have been deleted") from None
            self._tar = tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz")
        return self._tar

    def _flow_member(self) -> str:
        if self._flow_file:
            return self._flow_file
        top = [m.name for m in self.tarball.getmembers()
               if m.name.startswith(f"{USER_FOLDER}/") and m.name.count("/") == 1 and m.name.endswith(".py")]
        return top[0] if len(top) == 1 else ""

    @property
    def info(self) -> dict[str, Any]:
        """What the package holds: the flow file (``script``), its SHA-256 and the
        distributions it carries (``name==version``)."""
        names = self.tarball.getnames()
        dists = []
        for name in names:
            if name.endswith(".dist-info/METADATA"):
                meta = self.tarball.extractfile(name).read().decode("utf-8", "replace")  # type: ignore[union-attr]
                fields = dict(line.split(": ", 1) for line in meta.splitlines() if ": " in line)
                dists.append(f"{fields.get('Name', '?')}=={fields.get('Version', '?')}")
        flow_file = self._flow_member()
        return {"script": flow_file.rsplit("/", 1)[-1], "flow_file": flow_file, "sha": self._sha,
                "ds_type": self._ds_type, "distributions": sorted(dists), "environment_type": "local"}

    @property
    def flowspec(self) -> str:
        """The text of the flow's file."""
        member = self._flow_member()
        handle = self.tarball.extractfile(member) if member else None
        return handle.read().decode("utf-8") if handle is not None else ""

    def __str__(self) -> str:
        return f"<FlowCode: {self._flow_member() or self._path}>"

    __repr__ = __str__
