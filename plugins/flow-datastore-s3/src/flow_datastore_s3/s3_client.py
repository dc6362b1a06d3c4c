"""Metaflow's `S3` client for Flow: ``with S3(run=self) as s3: s3.put("k", "v")``.

Same constructor, methods and return values as Metaflow's, so a ported flow changes only its
import. Underneath it differs: Metaflow starts worker processes (s3op) for each batch; here
every batched call fans out over one thread pool of boto3 calls sharing one client per
process and endpoint (built as the datastore builds its own, from the same settings), which
saves process start-ups and the service model load on every call. Downloads land in a temporary
folder of the `S3` object, removed when its ``with`` block ends; objects from 32 MiB move in
concurrent parts.

``S3(run=...)`` roots keys at ``<METAFLOW_DATATOOLS_S3ROOT>/<flow>/<run_id>``, the setting
defaulting to ``<METAFLOW_DATASTORE_SYSROOT_S3>/data`` as in Metaflow, so both put a run's files
in the same place.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar, Union

from botocore.exceptions import ClientError
from flow_core.plugin_api import DataStoreError, Settings

from flow_datastore_s3.s3_objects import (
    USER_ATTRIBUTES,
    MetaflowS3AccessDenied,
    MetaflowS3Exception,
    MetaflowS3InvalidRange,
    MetaflowS3NotFound,
    MetaflowS3URLException,
    RangeInfo,
    S3GetObject,
    S3Object,
    S3PutObject,
)
from flow_datastore_s3.storage import _DENIED, _MISSING, _S3_ERRORS, MULTIPART_FROM, TRANSFER, S3Storage, new_client

T = TypeVar("T")
Key = Union[str, S3GetObject, None]
#: Threads moving objects at once; each large object adds its transfer manager's part threads.
WORKERS = 32
CONNECTIONS = 64
CHUNK = 1024 * 1024

_lock = threading.Lock()
_clients: dict[tuple[str | None, int], Any] = {}
_pools: dict[int, ThreadPoolExecutor] = {}


def _shared_client(endpoint_url: str | None) -> Any:
    """One boto3 client per endpoint and process: building one loads S3's service model (a
    second or so), and clients are thread-safe but must not cross a fork."""
    with _lock:
        key = (endpoint_url, os.getpid())
        if key not in _clients:
            _clients[key] = new_client(endpoint_url, CONNECTIONS)
        return _clients[key]


def _map(function: Callable[[Any], T], items: list) -> list[T]:
    if len(items) <= 1:
        return [function(item) for item in items]
    with _lock:
        pool = _pools.get(os.getpid())
        if pool is None:
            pool = _pools[os.getpid()] = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="flow-s3")
    return list(pool.map(function, items))


def _split(url: str) -> tuple[str, str]:
    bucket, _, key = url[5:].partition("/")
    return bucket, key


def _join(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


def _run_identity(run: Any) -> tuple[str, str]:
    """(flow name, run id) of the flow object of a running step or of a Client API `Run`."""
    import flow_core  # the user-facing package: only `FlowSpec` and `current` are used

    if isinstance(run, flow_core.FlowSpec):
        if not flow_core.current.is_running_flow:
            raise MetaflowS3URLException("S3(run=self) works only inside a running step; outside one, pass "
                                         "a Run from the Client API or s3root='s3://bucket/prefix'")
        return str(flow_core.current.flow_name), str(flow_core.current.run_id)
    pathspec = getattr(run, "pathspec", None)
    if isinstance(pathspec, str) and pathspec.count("/") == 1:
        flow_name, run_id = pathspec.split("/")
        return flow_name, run_id
    raise MetaflowS3URLException(f"S3(run=...) takes the flow object of a running step (self) or a Run "
                                 f"from the Client API, not {run!r}")


def run_root(run: Any, bucket: str | None = None, prefix: str | None = None,
             settings: Settings | None = None) -> str:
    """``s3://<bucket>/<prefix>/<flow>/<run_id>``: bucket and prefix default to those of
    METAFLOW_DATATOOLS_S3ROOT, itself defaulting to METAFLOW_DATASTORE_SYSROOT_S3 + "/data"."""
    settings = settings or Settings()
    root = settings.get("METAFLOW_DATATOOLS_S3ROOT")
    sysroot = settings.get("METAFLOW_DATASTORE_SYSROOT_S3")
    if not root and sysroot:
        root = f"{sysroot.rstrip('/')}/{settings.get('METAFLOW_DATATOOLS_SUFFIX', 'data')}"
    if root and not root.startswith("s3://"):
        raise MetaflowS3URLException(f"METAFLOW_DATATOOLS_S3ROOT must look like s3://bucket/prefix, not '{root}'")
    root_bucket, root_prefix = _split(root) if root else ("", "")
    bucket = bucket or root_bucket
    if not bucket:
        raise MetaflowS3URLException("S3(run=...) needs METAFLOW_DATATOOLS_S3ROOT or METAFLOW_DATASTORE_SYSROOT_S3 "
                                     "(s3://bucket/prefix), or a bucket=")
    flow_name, run_id = _run_identity(run)
    return f"s3://{bucket}/" + _join(root_prefix if prefix is None else prefix, flow_name, run_id)


class S3:
    """Metaflow's S3 client: ``S3(run=self)``, ``S3(s3root=...)``, ``S3(bucket=..., prefix=...)``,
    or ``S3()`` with full ``s3://`` URLs as keys. Use it in a ``with`` block: downloaded files
    are deleted when it ends."""

    def __init__(self, tmproot: str | None = None, bucket: str | None = None, prefix: str | None = None,
                 run: Any = None, s3root: str | None = None, encryption: str | None = None,
                 endpoint_url: str | None = None, **kwargs: Any):
        if kwargs:
            raise TypeError(f"S3() does not take {', '.join(sorted(kwargs))} in Flow; credentials and "
                            "endpoint come from the AWS chain and METAFLOW_S3_ENDPOINT_URL")
        settings = Settings()
        if run is not None:
            self._root: str | None = run_root(run, bucket, prefix, settings)
        elif s3root:
            if not s3root.startswith("s3://") or not _split(s3root)[0]:
                raise MetaflowS3URLException(f"s3root needs to be an S3 URL prefixed with s3://, not '{s3root}'")
            self._root = s3root.rstrip("/")
        elif bucket:
            self._root = f"s3://{bucket}/{_join(prefix or '')}".rstrip("/")
        else:
            self._root = None
        self._endpoint = endpoint_url or settings.get("METAFLOW_S3_ENDPOINT_URL")
        self._encryption = encryption
        self._tmpdir: str | None = tempfile.mkdtemp(dir=tmproot or settings.get("METAFLOW_TEMPDIR"),
                                                    prefix="flow.s3.")

    def __enter__(self) -> S3:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        """Delete every file this client downloaded."""
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    @property
    def _client(self) -> Any:
        return _shared_client(self._endpoint)

    # -- URLs and errors ---------------------------------------------------------------------

    def _url(self, key: Key) -> str:
        key = getattr(key, "key", key)
        if self._root is None:
            if isinstance(key, str) and key.startswith("s3://") and _split(key)[1]:
                return key
            raise MetaflowS3URLException(f"'{key}' is not a full s3:// URL; give S3 an s3root= (or run=self "
                                         "inside a step) to use keys relative to it")
        if key:
            if key.startswith("s3://"):
                raise MetaflowS3URLException(f"{key} is a full URL, but this S3 client is rooted at {self._root}: "
                                             "give keys relative to it")
            return f"{self._root}/{key.lstrip('/')}"
        return self._root

    def _failure(self, exc: BaseException, url: str, what: str) -> Exception:
        """What to raise for an error of boto3's while doing ``what`` to ``url``."""
        bucket = _split(url)[0]
        if isinstance(exc, ClientError):
            code = exc.response.get("Error", {}).get("Code", "")
            if code in _MISSING:
                return MetaflowS3NotFound(f"S3 has no object {url}")
            if code == "NoSuchBucket":
                return MetaflowS3NotFound(f"the S3 bucket '{bucket}' does not exist (reading {url})")
            if code in _DENIED:
                return MetaflowS3AccessDenied(f"access to {url} was denied ({code}); check your AWS credentials "
                                              "and the bucket's policy")
            if code == "InvalidRange":
                return MetaflowS3InvalidRange(f"the range asked of {url} is outside the object")
        # the datastore's sentences for unreachable endpoints, missing credentials, ...
        sentence: DataStoreError = S3Storage(bucket, "", self._endpoint)._error(exc, what)
        return MetaflowS3Exception(str(sentence))

    def _missing(self, url: str) -> bool:
        try:
            bucket, key = _split(url)
            self._client.head_object(Bucket=bucket, Key=key)
            return False
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                return True
            raise self._failure(exc, url, f"look up {url}") from None
        except _S3_ERRORS as exc:
            raise self._failure(exc, url, f"look up {url}") from None

    # -- reading -------------------------------------------------------------------------------

    def _download(self, url: str, byte_range: str | None, prefix: str | None, return_missing: bool) -> S3Object:
        bucket, key = _split(url)
        assert self._tmpdir, "this S3 client is closed: use it inside its `with` block"
        request = {"Bucket": bucket, "Key": key, **({"Range": byte_range} if byte_range else {})}
        try:
            response = self._client.get_object(**request)
            fd, path = tempfile.mkstemp(dir=self._tmpdir, prefix="obj.")
            with os.fdopen(fd, "wb") as out:
                if not byte_range and response["ContentLength"] >= MULTIPART_FROM:
                    response["Body"].close()  # large: fetch again in concurrent ranges
                    self._client.download_fileobj(bucket, key, out, Config=TRANSFER)
                else:
                    for chunk in response["Body"].iter_chunks(CHUNK):
                        out.write(chunk)
        except _S3_ERRORS as exc:
            failure = self._failure(exc, url, f"read {url}")
            if return_missing and isinstance(failure, MetaflowS3NotFound):
                return S3Object(prefix, url)
            raise failure from None
        range_info = None
        if byte_range:  # "bytes 10-19/100"
            span, _, total = response.get("ContentRange", "").partition(" ")[2].partition("/")
            start, _, end = span.partition("-")
            if total.isdigit() and start.isdigit() and end.isdigit():
                range_info = RangeInfo(int(total), int(start), int(end) - int(start) + 1)
        return S3Object(prefix, url, path, content_type=response.get("ContentType"),
                        metadata=response.get("Metadata"), range_info=range_info,
                        last_modified=int(response["LastModified"].timestamp()) if "LastModified" in response else None,
                        encryption=response.get("ServerSideEncryption"))

    def _get_many(self, keys: Iterable[Key], return_missing: bool) -> list[S3Object]:
        jobs = [(self._url(key), _byte_range(key)) for key in keys]
        return _map(lambda job: self._download(job[0], job[1], self._root, return_missing), jobs)

    def get(self, key: Key = None, return_missing: bool = False, return_info: bool = True) -> S3Object:
        """Download one object (the root itself when ``key`` is None) to a local file."""
        return self._get_many([key], return_missing)[0]

    def get_many(self, keys: Iterable[Key], return_missing: bool = False, return_info: bool = True) -> list[S3Object]:
        """Download many objects at once, in the order asked."""
        return self._get_many(list(keys), return_missing)

    def get_recursive(self, keys: Iterable[str | None], return_info: bool = False) -> list[S3Object]:
        """Download every object under each of these prefixes; keys are relative to the prefix."""
        listed = self._list_many(list(keys), recursive=True)
        return _map(lambda item: self._download(item[1], None, item[0], False), listed)

    def get_all(self, return_info: bool = False) -> list[S3Object]:
        """Download everything under the client's root."""
        if self._root is None:
            raise MetaflowS3URLException("get_all() needs an S3 client with an s3root or a run")
        return self.get_recursive([None], return_info)

    def info(self, key: str | None = None, return_missing: bool = False) -> S3Object:
        """What S3 knows of one object (size, type, metadata), without downloading it."""
        return self.info_many([key], return_missing)[0]

    def info_many(self, keys: Iterable[str | None], return_missing: bool = False) -> list[S3Object]:
        def head(url: str) -> S3Object:
            bucket, key = _split(url)
            try:
                response = self._client.head_object(Bucket=bucket, Key=key)
            except _S3_ERRORS as exc:
                failure = self._failure(exc, url, f"look up {url}")
                if return_missing and isinstance(failure, MetaflowS3NotFound):
                    return S3Object(self._root, url)
                raise failure from None
            return S3Object(self._root, url, size=response["ContentLength"],
                            content_type=response.get("ContentType"), metadata=response.get("Metadata"),
                            last_modified=int(response["LastModified"].timestamp()),
                            encryption=response.get("ServerSideEncryption"))

        return _map(head, [self._url(key) for key in keys])

    # -- listing -------------------------------------------------------------------------------

    def _list(self, url: str, recursive: bool) -> list[tuple[str, str, int | None]]:
        """(listed prefix URL, URL, size or None for a sub-prefix) of what is under ``url``."""
        bucket, key = _split(url)
        if recursive:
            request: dict[str, Any] = {"Bucket": bucket, "Prefix": key}
        else:
            url = url.rstrip("/") + "/"
            request = {"Bucket": bucket, "Prefix": _split(url)[1], "Delimiter": "/"}
        found: list[tuple[str, str, int | None]] = []
        try:
            for page in self._client.get_paginator("list_objects_v2").paginate(**request):
                for item in page.get("Contents", ()):
                    name = item["Key"]
                    # a recursive listing of "a" is of the object "a" and of "a/...", not of "ab"
                    if recursive and key and name != key and not name.startswith(key.rstrip("/") + "/"):
                        continue
                    found.append((url, f"s3://{bucket}/{name}", item["Size"]))
                for sub in page.get("CommonPrefixes", ()):
                    found.append((url, f"s3://{bucket}/{sub['Prefix']}", None))
        except _S3_ERRORS as exc:
            raise self._failure(exc, url, f"list {url}") from None
        return found

    def _list_many(self, keys: list[str | None], recursive: bool) -> list[tuple[str, str, int | None]]:
        urls = [self._url(key) for key in (keys or [None])]
        return [item for listing in _map(lambda url: self._list(url, recursive), urls) for item in listing]

    def list_paths(self, keys: Iterable[str] | None = None) -> list[S3Object]:
        """The next level under each key (the root by default): objects, and sub-prefixes with
        ``exists == False``."""
        return [S3Object(prefix, url, size=size) for prefix, url, size in
                self._list_many(list(keys or [None]), recursive=False)]

    def list_recursive(self, keys: Iterable[str] | None = None) -> list[S3Object]:
        """Every object under each key (the root by default)."""
        return [S3Object(prefix, url, size=size) for prefix, url, size in
                self._list_many(list(keys or [None]), recursive=True)]

    # -- writing -------------------------------------------------------------------------------

    def _upload(self, url: str, value: bytes | None, path: str | None, content_type: str | None,
                metadata: dict[str, str] | None, overwrite: bool) -> bool:
        """Store one object; False when it exists and ``overwrite`` is off."""
        if not overwrite and not self._missing(url):
            return False
        bucket, key = _split(url)
        extra: dict[str, Any] = {}
        if content_type:
            extra["ContentType"] = content_type
        if metadata:
            extra["Metadata"] = {USER_ATTRIBUTES: json.dumps(metadata)}
        if self._encryption:
            extra["ServerSideEncryption"] = self._encryption
        try:
            if path is not None:
                if os.path.getsize(path) >= MULTIPART_FROM:
                    self._client.upload_file(path, bucket, key, ExtraArgs=extra, Config=TRANSFER)
                    return True
                with open(path, "rb") as file:
                    value = file.read()
            assert value is not None
            if len(value) >= MULTIPART_FROM:
                self._client.upload_fileobj(io.BytesIO(value), bucket, key, ExtraArgs=extra, Config=TRANSFER)
            else:
                self._client.put_object(Bucket=bucket, Key=key, Body=value, **extra)
        except _S3_ERRORS as exc:
            raise self._failure(exc, url, f"write {url}") from None
        return True

    def put(self, key: str | S3PutObject, obj: str | bytes, overwrite: bool = True,
            content_type: str | None = None, metadata: dict[str, str] | None = None) -> str:
        """Store ``obj`` (str as UTF-8, or bytes) at ``key``; returns its URL."""
        url = self._url(key)
        self._upload(url, _as_bytes(obj, key), None, content_type, metadata, overwrite)
        return url

    def put_many(self, key_objs: Iterable[tuple[str, str | bytes] | S3PutObject],
                 overwrite: bool = True) -> list[tuple[str, str]]:
        """Store many objects at once; returns (key, URL) of those written."""
        jobs = []
        for item in key_objs:
            if isinstance(item, S3PutObject):
                jobs.append((item.key, self._url(item.key), _as_bytes(item.value, item.key), None,
                             item.content_type, item.metadata))
            else:
                key, value = item
                jobs.append((key, self._url(key), _as_bytes(value, key), None, None, None))
        return self._put_jobs(jobs, overwrite)

    def put_files(self, key_paths: Iterable[tuple[str, str] | S3PutObject],
                  overwrite: bool = True) -> list[tuple[str, str]]:
        """Upload local files at once; returns (key, URL) of those written."""
        jobs = []
        for item in key_paths:
            key, path = (item.key, item.path) if isinstance(item, S3PutObject) else item
            if path is None or not os.path.exists(path):
                raise MetaflowS3NotFound(f"Local file not found: {path}")
            jobs.append((key, self._url(key), None, os.fspath(path), getattr(item, "content_type", None),
                         getattr(item, "metadata", None)))
        return self._put_jobs(jobs, overwrite)

    def _put_jobs(self, jobs: list[tuple], overwrite: bool) -> list[tuple[str, str]]:
        written = _map(lambda job: self._upload(*job[1:], overwrite), jobs)
        return [(job[0], job[1]) for job, done in zip(jobs, written) if done]


def _as_bytes(value: Any, key: Any) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise MetaflowS3Exception(f"S3 can store only str or bytes; {getattr(key, 'key', key)} is a "
                              f"{type(value).__name__}")


def _byte_range(key: Key) -> str | None:
    """The HTTP Range of an `S3GetObject` (None for a whole object)."""
    offset, length = getattr(key, "offset", None), getattr(key, "length", None)
    if length is None:
        return f"bytes={offset}-" if offset else None
    if length < 0:
        return f"bytes=-{-length}"
    return f"bytes={offset or 0}-{(offset or 0) + length - 1}"
