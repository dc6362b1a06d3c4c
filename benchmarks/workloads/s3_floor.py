"""The floor under the S3 row of `artifact.py`: the same 128 MiB put into the same server and
read back by boto3 in a plain script, one request each way, with no framework, no pickling and
no hashing (boto3's own checksums off, as Flow's client has them). A framework that keeps an
array on this server pays at least this, so Metaflow's time for the S3 row over this one is
the most any framework could gain on it."""

import os
import time
from urllib.parse import urlparse

import boto3
import numpy as np
from botocore.config import Config

root = urlparse(os.environ["METAFLOW_DATASTORE_SYSROOT_S3"])
key = f"{root.path.strip('/')}/floor"
s3 = boto3.client("s3", endpoint_url=os.environ["METAFLOW_S3_ENDPOINT_URL"],
                  config=Config(request_checksum_calculation="when_required",
                                response_checksum_validation="when_required"))
body = np.random.default_rng(0).random(128 * 1024 * 1024 // 8).tobytes()
started = time.time()
s3.put_object(Bucket=root.netloc, Key=key, Body=body)
back = s3.get_object(Bucket=root.netloc, Key=key)["Body"].read()
seconds = time.time() - started
assert back == body
print("BENCH_SECONDS", seconds)
