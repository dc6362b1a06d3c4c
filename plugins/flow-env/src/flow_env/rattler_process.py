"""Everything Flow asks of py-rattler, in a process of its own.

py-rattler's runtime threads sometimes crash the interpreter as it shuts down (a segfault or
an abort after the work is done, in about a third of processes here), which must not take
a run, or a test session, with it. So rattler is never imported by the runtime: each job is
this module run as a child process that leaves with ``os._exit``::

    python -m flow_env.rattler_process solve <request.json>        # records as JSON, on stdout
    python -m flow_env.rattler_process install <lock.json> <files folder or -> <prefix> <final prefix> <package cache>
    python -m flow_env.rattler_process index <channel folder>

In a task's container, whose image has no py-rattler, it runs in a throwaway virtualenv
holding py-rattler alone; it therefore imports nothing but rattler and the standard library.
Exit status 3 means the request could not be met (the reason is stderr's last line).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterable, NamedTuple, Protocol


class InstallError(Exception):
    """rattler could not install the packages; the message says why, in one line."""


class RecordMismatch(InstallError):
    """A lock's record does not name the file it was locked with."""


class CondaFile(Protocol):
    """What installing needs of a locked conda package (a `flow_env.lock.LockedPackage`)."""

    filename: str
    url: str
    record: Any


def install(packages: Iterable[CondaFile], prefix: Path, final_prefix: Path, package_cache: Path,
            files: Path | None = None) -> None:
    """Link ``packages`` into ``prefix``; files that name their prefix get ``final_prefix``.
    With ``files``, each package is read from ``files/<filename>`` instead of its URL, so
    nothing is downloaded."""
    import rattler

    records = repodata_records(rattler, list(packages), files)
    package_cache.mkdir(parents=True, exist_ok=True)
    # rattler makes an HTTP client even when every file is local, and making one fails where
    # the system has no CA certificates (a slim image). With local files that client never
    # connects, and each file was checked against its SHA-256 already: a client that would
    # not verify certificates is made without them.
    config = rattler.Config.from_toml("tls-no-verify = true") if files else None
    try:
        asyncio.run(rattler.install(records, target_prefix=prefix, cache_dir=package_cache, show_progress=False,
                                    alternative_target_prefix=final_prefix, config=config))
    except Exception as exc:
        raise InstallError(cause(str(exc))) from None


def repodata_records(rattler: Any, packages: list[CondaFile], files: Path | None = None) -> list[Any]:
    """The lock's records as rattler's installer takes them, rebuilt from their repodata
    entries exactly (hashes included): one throwaway repodata.json per record. With
    ``files``, the records point at the copies there (a ``file://`` URL)."""
    records = []
    with tempfile.TemporaryDirectory(prefix="flow-conda-") as folder:
        for index, package in enumerate(packages):
            entry = {k: v for k, v in dict(package.record or {}).items() if k not in ("fn", "url", "channel")}
            base_url = files.absolute().as_uri() + "/" if files else package.url.rsplit("/", 1)[0] + "/"
            repodata = {"info": {"subdir": entry.get("subdir", "noarch"), "base_url": base_url},
                        "packages.conda" if package.filename.endswith(".conda") else "packages":
                            {package.filename: entry}}
            path = Path(folder) / f"{index}.json"
            path.write_text(json.dumps(repodata))
            channel = rattler.Channel(str((package.record or {}).get("channel") or base_url))
            (record,) = rattler.RepoData.from_path(str(path)).into_repo_data(channel)
            expected = base_url + package.filename if files else package.url
            if record.url != expected:
                raise RecordMismatch(f"the lock's record of {package.filename} names {expected}, which rattler "
                                     f"reads as {record.url}; resolve the environment again")
            records.append(record)
    return records


def cause(text: str) -> str:
    """rattler's reason in one line, without its preamble."""
    text = " ".join(line.strip() for line in text.splitlines() if line.strip())
    return text.removeprefix("Cannot solve the request because of:").strip().rstrip(".") or "no reason given"


class _Package(NamedTuple):
    filename: str
    url: str
    record: Any


UNMET = 3


def solve(request: dict[str, Any]) -> list[dict[str, Any]]:
    """Solve ``request`` (channels, specs, platforms, constraints, and either this machine's
    virtual packages or the ones named); the records as their repodata JSON."""
    import rattler

    if request.get("virtual_packages") is None:
        virtual = list(rattler.VirtualPackage.detect())
    else:
        virtual = [rattler.GenericVirtualPackage(rattler.PackageName(name), rattler.Version(version),
                                                 rattler.BuildString("0"))
                   for name, version in request["virtual_packages"].items()]
    try:
        records = asyncio.run(rattler.solve(request["channels"], request["specs"], platforms=request["platforms"],
                                            virtual_packages=virtual, constraints=request.get("constraints") or []))
    except Exception as exc:
        raise InstallError(cause(str(exc))) from None
    return [json.loads(record.to_json()) for record in records]


def index(channel: Path) -> None:
    """Write a local channel's repodata (how the tests make one)."""
    import rattler.index

    asyncio.run(rattler.index.index_fs(channel, write_zst=False, write_shards=False, force=True))


def main(command: str, *arguments: str) -> None:
    try:
        if command == "solve":
            print(json.dumps(solve(json.loads(Path(arguments[0]).read_text()))))
        elif command == "install":
            lock_file, files, prefix, final_prefix, package_cache = arguments
            raw = json.loads(Path(lock_file).read_text())
            packages = [_Package(p["filename"], p["url"], p["record"]) for p in raw["packages"] if p.get("record")]
            install(packages, Path(prefix), Path(final_prefix), Path(package_cache),
                    files=None if files == "-" else Path(files))
        elif command == "index":
            index(Path(arguments[0]))
        else:
            print(f"unknown command {command!r}", file=sys.stderr)
            _exit(2)
    except InstallError as exc:
        print(str(exc), file=sys.stderr)
        _exit(UNMET)
    _exit(0)


def _exit(status: int) -> None:
    """Leave without Python's shutdown: rattler's runtime threads sometimes crash it (a
    segfault or abort after the work is done), which would fail a finished build."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    main(*sys.argv[1:])
