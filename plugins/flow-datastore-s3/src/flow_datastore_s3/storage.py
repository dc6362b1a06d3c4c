"""Flow's storage backend on S3: the same named blobs the local backend writes, in a bucket.

The core's content-addressed store sits on top and decides what to write; this module only
moves blobs, many at a time: every batched call fans out over a thread pool of boto3 calls
(boto3 clients are thread-safe; one per process, as they must not cross a fork). Large
objects go up in parts and come down in concurrent ranges through boto3's transfer manager.
botocore retries throttling and transient errors with back-off; what is left is turned into
one plain sentence.
"""

from __future__ import annotations

import io
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable, Iterator, Mapping, TypeVar

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError
from flow_core.plugin_api import Blob, BlobNotFound, ConfigError, DataStoreError, Settings, StorageBackend

T = TypeVar("T")

#: Objects at least this large are uploaded in parts and downloaded in concurrent ranges.
MULTIPART_FROM = 32 * 1024 * 1024
PART_SIZE = 8 * 1024 * 1024
WORKERS = 32
TRANSFER = TransferConfig(multipart_threshold=MULTIPART_FROM, multipart_chunksize=PART_SIZE,
                          max_concurrency=8, use_threads=True)
_MISSING = {"404", "NoSuchKey", "NotFound"}


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
    def from_settings(cls, settings: Settings) -> "S3Storage":
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
        # Every object's name is already the SHA-256 of its content, so botocore's own CRC
        # checksums over each body (they cost about a third of an upload's time) are left to
        # the operations that require them.
        config = Config(max_pool_connections=WORKERS, retries={"max_attempts": 8, "mode": "adaptive"},
                        connect_timeout=10, read_timeout=120, request_checksum_calculation="when_required",
                        response_checksum_validation="when_required")
        return boto3.session.Session().client("s3", endpoint_url=self.endpoint_url, config=config)

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

    def _error(self, exc: Exception, what: str) -> DataStoreError:
        where = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        if isinstance(exc, ClientError):
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "NoSuchBucket":
                return DataStoreError(f"the S3 bucket '{self.bucket}' does not exist; create it or fix "
                                      "METAFLOW_DATASTORE_SYSROOT_S3")
            if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
                try:  # some stores deny a write to a bucket that does not exist: say which it is
                    self._check_bucket()
                except DataStoreError as missing:
                    if "does not exist" in str(missing):
                        return missing
                return DataStoreError(f"access to {where} was denied ({code}); check your AWS credentials "
                                      "and the bucket's policy")
            return DataStoreError(f"S3 refused to {what} in {where}: {code or exc}")
        if isinstance(exc, NoCredentialsError):
            return DataStoreError("no AWS credentials were found for the S3 datastore; configure them as for "
                                  "the AWS CLI (environment, ~/.aws, or an instance role)")
        if isinstance(exc, EndpointConnectionError):
            endpoint = self.endpoint_url or "S3"
            return DataStoreError(f"cannot reach {endpoint} to {what}; check the network or METAFLOW_S3_ENDPOINT_URL")
        return DataStoreError(f"could not {what} in {where}: {exc}")

    def _guarded(self, what: str, function: Callable[[], T]) -> T:
        try:
            return function()
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, what) from None

    # -- the storage interface ------------------------------------------------------------------

    def put_many(self, items: Iterable[tuple[str, Blob]], overwrite: bool = True) -> None:
        items = list(items)
        if not overwrite:
            present = self.exists_many(key for key, _ in items)
            items = [(key, blob) for key, blob in items if key not in present]
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
            return key, download()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                raise BlobNotFound(key) from None
            raise self._error(exc, f"read {key}") from None
        except BotoCoreError as exc:
            raise self._error(exc, f"read {key}") from None

    def exists_many(self, keys: Iterable[str]) -> set[str]:
        found = self._map(self._exists, list(dict.fromkeys(keys)))
        return {key for key, present in found if present}

    def _exists(self, key: str) -> tuple[str, bool]:
        try:
            self._client().head_object(Bucket=self.bucket, Key=self._key(key))
            return key, True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                if exc.response.get("Error", {}).get("Code") == "404":
                    self._check_bucket()  # HEAD cannot tell a missing key from a missing bucket
                return key, False
            raise self._error(exc, f"look up {key}") from None
        except BotoCoreError as exc:
            raise self._error(exc, f"look up {key}") from None

    def _check_bucket(self) -> None:
        if self._bucket_checked:
            return
        try:
            self._client().head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchBucket"):
                raise DataStoreError(f"the S3 bucket '{self.bucket}' does not exist; create it or fix "
                                     "METAFLOW_DATASTORE_SYSROOT_S3") from None
            raise self._error(exc, "find the bucket") from None
        except BotoCoreError as exc:
            raise self._error(exc, "find the bucket") from None
        self._bucket_checked = True

    def list(self, prefix: str = "") -> Iterator[str]:
        def collect() -> list[str]:
            paginator = self._client().get_paginator("list_objects_v2")
            base = f"{self.prefix}/" if self.prefix else ""
            keys = []
            for page in paginator.paginate(Bucket=self.bucket, Prefix=base + prefix):
                keys.extend(item["Key"][len(base):] for item in page.get("Contents", ()))
            return keys

        return iter(sorted(self._guarded(f"list {prefix or 'the datastore'}", collect)))
