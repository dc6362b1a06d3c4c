"""Flow's storage backend on S3: the same named blobs the local backend writes, in a bucket.

The core's content-addressed store sits on top and decides what to write; this module only
moves blobs, many at a time: every batched call fans out over a thread pool of boto3 calls
(boto3 clients are thread-safe; one per process, as they must not cross a fork). Large
objects go up in parts and come down in concurrent ranges through boto3's transfer manager.
botocore retries throttling and transient errors with back-off; what is left is turned into
one plain sentence (an S3 that has gone away included: "cannot reach S3 at URL to write KEY:
connection refused"). Before its first write each backend instance checks, once, that the bucket
exists: some S3-compatible stores create a missing bucket on the first write, and a mistyped
bucket name would then silently start a second datastore.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import boto3
from boto3.s3.transfer import S3TransferRetriesExceededError as RetriesExceededError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    HTTPClientError,
    NoCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from flow_core.plugin_api import (
    Blob,
    BlobNotFound,
    ConfigError,
    DataStoreError,
    Settings,
    StorageBackend,
)

T = TypeVar("T")

#: Objects at least this large are uploaded in parts and downloaded in concurrent ranges.
MULTIPART_FROM = 32 * 1024 * 1024
PART_SIZE = 8 * 1024 * 1024
WORKERS = 32
DELETE_BATCH = 1000
TRANSFER = TransferConfig(multipart_threshold=MULTIPART_FROM, multipart_chunksize=PART_SIZE,
                          max_concurrency=8, use_threads=True)
_MISSING = {"404", "NoSuchKey", "NotFound"}
_NO_BUCKET = {"404", "NoSuchBucket"}
_DENIED = {"AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"}
#: What boto3 and its transfer manager raise; each becomes a DataStoreError of one sentence.
_S3_ERRORS = (ClientError, BotoCoreError, RetriesExceededError, ConnectionError, TimeoutError)
#: Errors that mean the endpoint did not answer (or stopped answering), not that S3 said no.
_UNREACHABLE = (BotoConnectionError, HTTPClientError, ConnectionError, TimeoutError)


def _network_cause(exc: BaseException) -> str:
    """The innermost reason a request never got its answer, in a few words ("connection
    refused"), found down the chain of wrapped exceptions."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return current.strerror[0].lower() + current.strerror[1:]
        inner = getattr(current, "kwargs", {}).get("error")
        current = inner if isinstance(inner, BaseException) else (current.__cause__ or current.__context__)
    if isinstance(exc, ConnectTimeoutError):
        return "the connection timed out"
    if isinstance(exc, (ReadTimeoutError, TimeoutError)):
        return "it stopped answering"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def new_client(endpoint_url: str | None, connections: int = WORKERS, sign_payloads: bool = True) -> Any:
    """A boto3 S3 client as every part of this package makes it (the datastore and the `S3` client).

    Every datastore object's name is already the hash of its content, so botocore's own CRC
    checksums over each body (they cost about a third of an upload's time) are left to the
    operations that require them. The datastore also passes ``sign_payloads=False``: botocore
    would otherwise hash every body with SHA-256 for the signature (on plain http, or without a
    checksum header), and the server hash it again to check; Flow refuses a changed object on
    read anyway. The `S3` client keeps signing, as nothing checks a user's objects later.
    """
    config = Config(max_pool_connections=connections, retries={"max_attempts": 8, "mode": "adaptive"},
                    connect_timeout=10, read_timeout=120, request_checksum_calculation="when_required",
                    response_checksum_validation="when_required",
                    s3=None if sign_payloads else {"payload_signing_enabled": False})
    return boto3.session.Session().client("s3", endpoint_url=endpoint_url or None, config=config)


def parse_sysroot(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> ("bucket", "some/prefix")."""
    if not url.startswith("s3://") or not url[5:].split("/", 1)[0]:
        raise ConfigError(f"METAFLOW_DATASTORE_SYSROOT_S3 must look like s3://bucket/prefix, not '{url}'")
    bucket, _, prefix = url[5:].partition("/")
    return bucket, prefix.strip("/")


class S3Storage(StorageBackend):
    """Blobs under ``s3://bucket/prefix``."""

    name = "s3"

    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None):
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url or None
        self._bucket_checked = False
        self._pid = 0
        self._client_lock = threading.Lock()
        self._client_instance: Any = None
        self._fork_template: Any = None
        self._template_pid = 0
        self._pool: ThreadPoolExecutor | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Storage:
        root = settings.require("METAFLOW_DATASTORE_SYSROOT_S3",
                                "set it to s3://bucket/prefix to store runs on S3")
        bucket, prefix = parse_sysroot(root)
        return cls(bucket, prefix, settings.get("METAFLOW_S3_ENDPOINT_URL"))

    def describe(self) -> str:
        where = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        return f"{where} at {self.endpoint_url}" if self.endpoint_url else where

    def location(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    # -- plumbing -----------------------------------------------------------------------------

    def _new_client(self) -> Any:
        return new_client(self.endpoint_url, sign_payloads=False)

    def warm_up(self) -> None:
        # Creating a boto3 client costs a second or more (it loads S3's service model). The
        # fork server makes one here, without a request (so no socket to share), and each
        # forked task adopts it instead of paying again.
        self._fork_template = self._new_client()
        self._template_pid = os.getpid()

    def _client(self) -> Any:
        with self._client_lock:
            if self._client_instance is None or self._pid != os.getpid():
                if self._fork_template is not None and self._template_pid != os.getpid():
                    self._client_instance, self._fork_template = self._fork_template, None
                else:
                    self._client_instance = self._new_client()
                self._pool = None
                self._pid = os.getpid()
            return self._client_instance

    def _map(self, function: Callable[[Any], T], items: list) -> list[T]:
        if len(items) <= 1:
            return [function(item) for item in items]
        self._client()  # (re)creates the pool after a fork, too
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=WORKERS)
        return list(self._pool.map(function, items))

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _where(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def _endpoint(self) -> str:
        """The URL requests go to, for messages (AWS's own when no endpoint is configured)."""
        if self.endpoint_url:
            return self.endpoint_url
        try:
            return self._client().meta.endpoint_url
        except BotoCoreError:  # only for a message: never let it hide the error being reported
            return "AWS"

    def _missing_bucket(self) -> DataStoreError:
        setting = f"METAFLOW_DATASTORE_SYSROOT_S3={self._where()}"
        if self.endpoint_url:
            setting += f", METAFLOW_S3_ENDPOINT_URL={self.endpoint_url}"
        return DataStoreError(f"the S3 bucket '{self.bucket}' does not exist ({setting}); create it or point "
                              "METAFLOW_DATASTORE_SYSROOT_S3 at an existing one")

    def _error(self, exc: BaseException, what: str) -> DataStoreError:
        """One sentence for whatever boto3 raised while doing ``what`` ("write data/ab/…")."""
        if isinstance(exc, RetriesExceededError) and isinstance(exc.last_exception, BaseException):
            exc = exc.last_exception  # the transfer manager's retries of a download ran out
        if isinstance(exc, ClientError):
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "NoSuchBucket":
                return self._missing_bucket()
            if code in _DENIED:
                # some stores deny a write to a bucket that does not exist: say which it is
                if self._bucket_known_missing():
                    return self._missing_bucket()
                return DataStoreError(f"access to {self._where()} was denied ({code}); check your AWS credentials "
                                      "and the bucket's policy")
            return DataStoreError(f"S3 refused to {what} in {self._where()}: {code or exc}")
        if isinstance(exc, NoCredentialsError):
            return DataStoreError("no AWS credentials were found for the S3 datastore; configure them as for "
                                  "the AWS CLI (environment, ~/.aws, or an instance role)")
        if isinstance(exc, _UNREACHABLE):
            return DataStoreError(f"cannot reach S3 at {self._endpoint()} to {what}: {_network_cause(exc)}")
        return DataStoreError(f"could not {what} in {self._where()}: {exc}")

    def _guarded(self, what: str, function: Callable[[], T]) -> T:
        try:
            return function()
        except _S3_ERRORS as exc:
            raise self._error(exc, what) from None

    def _bucket_known_missing(self) -> bool:
        """Whether a HEAD of the bucket says it does not exist (False when it cannot tell)."""
        try:
            self._client().head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            return exc.response.get("Error", {}).get("Code", "") in _NO_BUCKET
        except _S3_ERRORS:
            return False
        return False

    def _check_bucket(self) -> None:
        """Stop with one sentence when the bucket does not exist: at most one HEAD per backend
        instance (and so per process), before its first write or when a HEAD of a key cannot
        tell a missing key from a missing bucket, and none once an object has been read. A HEAD
        that is denied proves nothing (a role may write objects without listing the bucket), so
        the write goes ahead and speaks for itself."""
        if self._bucket_checked:
            return
        try:
            self._client().head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in _NO_BUCKET:
                raise self._missing_bucket() from None
            if code not in _DENIED:
                raise self._error(exc, f"find the bucket '{self.bucket}'") from None
        except _S3_ERRORS as exc:
            raise self._error(exc, f"find the bucket '{self.bucket}'") from None
        self._bucket_checked = True

    # -- the storage interface ------------------------------------------------------------------

    def put_many(self, items: Iterable[tuple[str, Blob]], overwrite: bool = True) -> None:
        items = list(items)
        if not overwrite:
            present = self.exists_many(key for key, _ in items)
            items = [(key, blob) for key, blob in items if key not in present]
        if items:
            self._check_bucket()  # a store may create a missing bucket on this write
        self._map(self._put, items)

    def _put(self, item: tuple[str, Blob]) -> None:
        key, blob = item
        size = memoryview(blob).nbytes

        def upload() -> None:
            if size >= MULTIPART_FROM:
                self._client().upload_fileobj(io.BytesIO(blob), self.bucket, self._key(key), Config=TRANSFER)
            else:
                self._client().put_object(Bucket=self.bucket, Key=self._key(key), Body=bytes(blob))

        self._guarded(f"write {key}", upload)

    def get_many(self, keys: Iterable[str]) -> Mapping[str, bytes]:
        return dict(self._map(self._get, list(dict.fromkeys(keys))))

    def _get(self, key: str) -> tuple[str, bytes]:
        def download() -> bytes:
            client = self._client()
            response = client.get_object(Bucket=self.bucket, Key=self._key(key))
            if response["ContentLength"] < MULTIPART_FROM:
                return response["Body"].read()
            response["Body"].close()  # large: fetch again in concurrent ranges
            buffer = io.BytesIO()
            client.download_fileobj(self.bucket, self._key(key), buffer, Config=TRANSFER)
            return buffer.getvalue()

        try:
            blob = download()
            self._bucket_checked = True  # an object came back: the bucket exists
            return key, blob
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                raise BlobNotFound(key) from None
            raise self._error(exc, f"read {key}") from None
        except _S3_ERRORS as exc:
            raise self._error(exc, f"read {key}") from None

    def exists_many(self, keys: Iterable[str]) -> set[str]:
        found = self._map(self._exists, list(dict.fromkeys(keys)))
        return {key for key, present in found if present}

    def _exists(self, key: str) -> tuple[str, bool]:
        try:
            self._client().head_object(Bucket=self.bucket, Key=self._key(key))
            self._bucket_checked = True  # an object is there: the bucket exists
            return key, True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                if exc.response.get("Error", {}).get("Code") == "404":
                    self._check_bucket()  # HEAD cannot tell a missing key from a missing bucket
                return key, False
            raise self._error(exc, f"look up {key}") from None
        except _S3_ERRORS as exc:
            raise self._error(exc, f"look up {key}") from None

    def delete_many(self, keys: Iterable[str]) -> None:
        """Remove these blobs (missing ones are fine), up to 1000 per request as S3 allows."""
        keys = list(dict.fromkeys(keys))
        batches = [keys[start:start + DELETE_BATCH] for start in range(0, len(keys), DELETE_BATCH)]
        self._map(self._delete, batches)

    def _delete(self, keys: list[str]) -> None:
        def delete() -> list[dict]:
            objects = [{"Key": self._key(key)} for key in keys]
            response = self._client().delete_objects(Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True})
            return [e for e in response.get("Errors", ()) if e.get("Code") not in _MISSING]

        what = f"delete {keys[0]}" + (f" and {len(keys) - 1} more" if len(keys) > 1 else "")
        errors = self._guarded(what, delete)
        if errors:
            first = errors[0]
            raise DataStoreError(f"S3 refused to delete {first.get('Key')} in {self._where()}: "
                                 f"{first.get('Code') or first.get('Message')}")

    def list(self, prefix: str = "") -> Iterator[str]:
        def collect() -> list[str]:
            paginator = self._client().get_paginator("list_objects_v2")
            base = f"{self.prefix}/" if self.prefix else ""
            keys = []
            for page in paginator.paginate(Bucket=self.bucket, Prefix=base + prefix):
                keys.extend(item["Key"][len(base):] for item in page.get("Contents", ()))
            return keys

        return iter(sorted(self._guarded(f"list {prefix or 'the datastore'}", collect)))
