"""Whole runs on the S3 datastore, against a real S3 server (SeaweedFS)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import boto3
from flow_core.testing import BREAKABLE_FLOW, assert_blob_intact, last_error, run_id_of
from flow_datastore_s3.seaweedfs import SeaweedS3

from .conftest import KEYED

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
CAS_KEY = re.compile(r"^flow/data/([0-9a-f]{2})/\1[0-9a-f]{62}$")
INDEX_KEY = re.compile(r"^flow/flows/\w+/\d+/\w+/\d+/\d+\.index$")


def bucket_keys(endpoint_url: str, bucket: str) -> list[str]:
    paginator = boto3.client("s3", endpoint_url=endpoint_url).get_paginator("list_objects_v2")
    return [o["Key"] for page in paginator.paginate(Bucket=bucket) for o in page.get("Contents", ())]


def test_hello_and_fanout_store_everything_in_the_bucket_in_the_cas_layout(s3_env, flow_cli, flow_env, seaweed, bucket):
    hello = flow_cli("run", str(EXAMPLES / "hello.py"))
    assert hello.returncode == 0, hello.stderr
    assert "Hello, Flow! has 9 letters." in hello.stdout
    fanout = flow_cli("run", str(EXAMPLES / "fanout.py"))
    assert fanout.returncode == 0, fanout.stderr
    keys = bucket_keys(seaweed.endpoint_url, bucket)
    assert keys and all(CAS_KEY.match(k) or INDEX_KEY.match(k) for k in keys), keys
    assert any(k.startswith("flow/flows/FanOutFlow/") for k in keys)
    local_files = [p for p in (flow_env.root / "data").rglob("*") if p.is_file()] if (flow_env.root / "data").exists() else []
    assert local_files == []  # nothing went to the local datastore

    script = (
        "from flow_core import Flow\n"
        "run = Flow('FanOutFlow').latest_successful_run\n"
        "print(run.data.total, [t.data.words for t in run['count']], [t.stdout for t in run['count']])\n"
    )
    read = subprocess.run([sys.executable, "-c", script], env={**os.environ, **flow_env}, capture_output=True, text=True, check=False)
    assert read.returncode == 0, read.stderr
    assert read.stdout.strip() == "9 [4, 2, 3] ['sentence 0: 4 words\\n', 'sentence 1: 2 words\\n', 'sentence 2: 3 words\\n']"


def test_s3_holds_byte_for_byte_the_objects_the_local_backend_writes(s3_env, flow_cli, flow_env, seaweed, bucket, tmp_path):
    assert flow_cli("run", str(EXAMPLES / "fanout.py")).returncode == 0
    local_root = tmp_path / "local-root"
    local = flow_cli("run", str(EXAMPLES / "fanout.py"),
                     env={"METAFLOW_DEFAULT_DATASTORE": "local", "METAFLOW_DATASTORE_SYSROOT_LOCAL": str(local_root)})
    assert local.returncode == 0, local.stderr
    local_blobs = {str(p.relative_to(local_root)): p.read_bytes() for p in (local_root / "data").rglob("*") if p.is_file()}
    client = boto3.client("s3", endpoint_url=seaweed.endpoint_url)
    s3_blobs = {k[len("flow/"):]: client.get_object(Bucket=bucket, Key=k)["Body"].read()
                for k in bucket_keys(seaweed.endpoint_url, bucket) if k.startswith("flow/data/")}
    # Artifacts that do not name the run (the sentences, the counts, the logs) are the same objects.
    shared = set(local_blobs) & set(s3_blobs)
    assert len(shared) >= 8
    assert all(local_blobs[k] == s3_blobs[k] for k in shared)


def test_resume_works_across_s3_runs(s3_env, flow_cli, flow_env, write_flow):
    path = write_flow("mends.py", BREAKABLE_FLOW)
    failed = flow_cli("run", str(path), env={"BREAK_MIDDLE": "1"})
    assert failed.returncode == 1 and "broken on purpose" in failed.stdout + failed.stderr
    resumed = flow_cli("resume", str(path), "--origin-run-id", run_id_of(failed.stdout))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert resumed.stdout.count("Reused Mends/") == 1  # start's artifacts are read back from S3

    script = "from flow_core import Flow\nrun = Flow('Mends').latest_successful_run\nprint(run.data.total, run['start'].task.data.numbers[-1])\n"
    read = subprocess.run([sys.executable, "-c", script], env={**os.environ, **flow_env}, capture_output=True, text=True, check=False)
    assert read.stdout.split() == ["499500", "999"], read.stderr


def test_a_missing_bucket_fails_the_run_before_it_starts(flow_env, seaweed, flow_cli):
    result = flow_cli("run", str(EXAMPLES / "hello.py"), env={
        "METAFLOW_DEFAULT_DATASTORE": "s3", "METAFLOW_DATASTORE_SYSROOT_S3": "s3://no-such-bucket/flow",
        "METAFLOW_S3_ENDPOINT_URL": seaweed.endpoint_url})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [(
        "Error: the S3 bucket 'no-such-bucket' does not exist (METAFLOW_DATASTORE_SYSROOT_S3=s3://no-such-bucket/flow, "
        f"METAFLOW_S3_ENDPOINT_URL={seaweed.endpoint_url}); create it or point METAFLOW_DATASTORE_SYSROOT_S3 at "
        "an existing one")]


def test_a_run_never_creates_a_missing_bucket_even_where_a_write_would(flow_env, keyed_seaweed, flow_cli, write_flow):
    """On a store that creates a bucket on the first write to it, a mistyped bucket would
    quietly become a new, empty datastore; the run stops instead, and no bucket appears."""
    env = {"METAFLOW_DEFAULT_DATASTORE": "s3", "METAFLOW_DATASTORE_SYSROOT_S3": "s3://mistyped-bucket/flow",
           "METAFLOW_S3_ENDPOINT_URL": keyed_seaweed.endpoint_url,
           "AWS_ACCESS_KEY_ID": KEYED[0], "AWS_SECRET_ACCESS_KEY": KEYED[1]}
    sentence = ("the S3 bucket 'mistyped-bucket' does not exist (METAFLOW_DATASTORE_SYSROOT_S3=s3://mistyped-bucket/flow, "
                f"METAFLOW_S3_ENDPOINT_URL={keyed_seaweed.endpoint_url}); create it or point "
                "METAFLOW_DATASTORE_SYSROOT_S3 at an existing one")
    result = flow_cli("run", str(EXAMPLES / "hello.py"), env=env)
    assert result.returncode == 1
    assert last_error(result) == f"Error: {sentence}"
    # An orchestrator's first command (no runtime before it) stops the same way.
    init = flow_cli("init", str(write_flow("mends.py", BREAKABLE_FLOW)), "--run-id", "sfn-1", env=env)
    assert init.returncode == 1
    assert last_error(init) == f"Error: {sentence}"
    assert "mistyped-bucket" not in keyed_seaweed.bucket_names()


def test_the_server_restarting_mid_run_never_leaves_a_corrupt_artifact(flow_env, flow_cli, tmp_path, write_flow):
    """Stop S3 while tasks upload, start it again: the run finishes or fails clearly, and resumes."""
    path = write_flow("uploads.py", """
        import os
        from flow_core import FlowSpec, step

        class Uploads(FlowSpec):
            @step
            def start(self):
                self.items = list(range(6))
                self.next(self.make, foreach="items")

            @step
            def make(self):
                self.blob = os.urandom(12 * 1024 * 1024) + bytes([self.input])
                self.next(self.join)

            @step
            def join(self, inputs):
                self.ends = sorted(i.blob[-1] for i in inputs)
                self.sizes = sorted(len(i.blob) for i in inputs)
                self.next(self.end)

            @step
            def end(self):
                print("ends", self.ends)
    """)
    with SeaweedS3(tmp_path / "fragile") as server:
        bucket = server.create_bucket("fragile")
        env = {**os.environ, **flow_env, "METAFLOW_DEFAULT_DATASTORE": "s3",
               "METAFLOW_DATASTORE_SYSROOT_S3": f"s3://{bucket}/flow", "METAFLOW_S3_ENDPOINT_URL": server.endpoint_url}
        proc = subprocess.Popen([sys.executable, "-m", "flow_core", "run", str(path), "--max-workers", "2"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 120
        while time.time() < deadline and not bucket_keys(server.endpoint_url, bucket):
            time.sleep(0.05)
        time.sleep(0.5)  # uploads under way
        server.stop()
        time.sleep(2)
        server.start()
        out, err = proc.communicate(timeout=600)
        if proc.returncode != 0:
            assert "Traceback" not in err.strip().splitlines()[-1]
            # the stop lands in a task's upload, or in the runtime's own read of a finished task
            assert err.strip().splitlines()[-1].startswith(("Error: run Uploads/", "Error: cannot reach S3 at "))
            resumed = subprocess.run([sys.executable, "-m", "flow_core", "resume", str(path)], env=env,
                                     capture_output=True, text=True, timeout=600, check=False)
            assert resumed.returncode == 0, resumed.stderr
            out = resumed.stdout
        assert "ends [0, 1, 2, 3, 4, 5]" in out
        # every object in the bucket is whole: its content hashes to its name
        client = boto3.client("s3", endpoint_url=server.endpoint_url)
        for key in bucket_keys(server.endpoint_url, bucket):
            if key.startswith("flow/data/"):
                assert_blob_intact(key, client.get_object(Bucket=bucket, Key=key)["Body"].read())
        check = subprocess.run([sys.executable, "-c", (
            "from flow_core import Flow, namespace; namespace(None)\n"
            "run = Flow('Uploads').latest_successful_run\n"
            "print(sorted(len(t.data.blob) for t in run['make']))\n")], env=env, capture_output=True, text=True, check=False)
        assert check.stdout.strip() == str([12 * 1024 * 1024 + 1] * 6), check.stderr
        server.discard()  # checked: its data may go without a clean shutdown


def test_the_test_s3_server_listens_on_loopback_only_and_reports_nothing_home(seaweed):
    """Nothing a test starts may reach an outside address: SeaweedFS's telemetry is off."""
    with open(f"/proc/{seaweed.process.pid}/cmdline", "rb") as cmdline:
        args = cmdline.read().decode().split("\0")
    assert "-master.telemetry=false" in args
    assert "-ip.bind=127.0.0.1" in args


def test_s3_going_away_mid_run_fails_the_run_with_the_cause(flow_env, tmp_path, write_flow):
    """The S3 server stops while a task runs: the run fails and says it cannot reach S3 and
    why, in one sentence, not with a botocore traceback."""
    path = write_flow("outage.py", """
        import os
        import time
        from pathlib import Path
        from flow_core import FlowSpec, step

        class Outage(FlowSpec):
            @step
            def start(self):
                self.next(self.work)

            @step
            def work(self):
                markers = Path(os.environ["OUTAGE_MARKERS"])
                (markers / "waiting").touch()
                while not (markers / "go").exists():
                    time.sleep(0.05)
                self.result = "computed while S3 was away"
                self.next(self.end)

            @step
            def end(self):
                pass
    """)
    markers = tmp_path / "markers"
    markers.mkdir()
    with SeaweedS3(tmp_path / "outage-s3") as server:  # its own server: this test stops it
        env = {**os.environ, **flow_env, "OUTAGE_MARKERS": str(markers), "METAFLOW_DEFAULT_DATASTORE": "s3",
               "METAFLOW_DATASTORE_SYSROOT_S3": f"s3://{server.create_bucket('outage')}/flow",
               "METAFLOW_S3_ENDPOINT_URL": server.endpoint_url}
        proc = subprocess.Popen([sys.executable, "-m", "flow_core", "run", str(path)],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.time() + 120
            while not (markers / "waiting").exists() and proc.poll() is None and time.time() < deadline:
                time.sleep(0.05)
            assert (markers / "waiting").exists(), "the step never started"
            server.stop()
            (markers / "go").touch()
            out, err = proc.communicate(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 1
    assert "Traceback" not in out + err
    summary = err.strip().splitlines()[-1]
    assert summary.startswith("Error: run Outage/"), err
    assert f"cannot reach S3 at {server.endpoint_url} to " in summary
    assert summary.endswith(": connection refused") or ": connection refused;" in summary, summary


def test_a_corrupted_artifact_object_is_an_error_naming_it_not_a_wrong_value(s3_env, flow_env, flow_cli, write_flow,
                                                                             seaweed, bucket):
    """One byte of a stored artifact flips in the bucket: reading the artifact fails with an
    error that names the damaged object, instead of handing back a different value."""
    path = write_flow("motto.py", """
        from flow_core import FlowSpec, step

        class Motto(FlowSpec):
            @step
            def start(self):
                self.motto = "-".join(["keep", "every", "byte"])  # no such literal in the code package
                self.next(self.end)

            @step
            def end(self):
                pass
    """)
    result = flow_cli("run", str(path))
    assert result.returncode == 0, result.stderr
    client = boto3.client("s3", endpoint_url=seaweed.endpoint_url)
    stored = {key: client.get_object(Bucket=bucket, Key=key)["Body"].read()
              for key in bucket_keys(seaweed.endpoint_url, bucket) if CAS_KEY.match(key)}
    (key,) = [key for key, blob in stored.items() if b"keep-every-byte" in blob]
    damaged = stored[key].replace(b"keep-every-byte", b"keep-evErY-byte")
    client.put_object(Bucket=bucket, Key=key, Body=damaged)

    script = (
        "from flow_core import FlowError, Flow\n"
        "try:\n"
        "    value = Flow('Motto').latest_run['start'].task.data.motto\n"
        "except FlowError as exc:\n"
        "    print('DataStoreError' in [kind.__name__ for kind in type(exc).__mro__], exc)\n"
        "else:\n"
        "    print('read', repr(value))\n"
    )
    read = subprocess.run([sys.executable, "-c", script], env={**os.environ, **flow_env}, capture_output=True,
                          text=True, check=False)
    assert read.returncode == 0, read.stderr
    assert read.stdout.startswith("True "), read.stdout  # a DataStoreError
    assert key[len("flow/"):] in read.stdout  # data/<2 hex>/<digest>
    assert "keep-evErY-byte" not in read.stdout


CARD_FLOW = '''
from flow_core import FlowSpec, card, current, step
from flow_core.cards import Markdown


class CardOnS3(FlowSpec):
    @card
    @step
    def start(self):
        current.card.append(Markdown("# stored in the bucket"))
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    CardOnS3()
'''


def test_cards_are_stored_in_the_bucket_and_read_back_through_it(s3_env, flow_cli, flow_env, seaweed, bucket,
                                                                 write_flow):
    run = flow_cli("run", str(write_flow("cards_s3.py", CARD_FLOW)))
    assert run.returncode == 0, run.stderr
    card_keys = [k for k in bucket_keys(seaweed.endpoint_url, bucket) if "/cards/" in k]
    assert len(card_keys) == 1 and re.match(r"^flow/flows/CardOnS3/\d+/start/\d+/cards/0/0-default-[0-9a-f]{16}\.html$",
                                            card_keys[0])
    script = (
        "from flow_core import Flow, namespace\n"
        "from flow_core.cards import get_cards\n"
        "namespace(None)\n"
        "(card,) = get_cards(Flow('CardOnS3').latest_run['start'].task)\n"
        "print(card.path)\n"
        "print('<h1>stored in the bucket</h1>' in card.html)\n"
    )
    read = subprocess.run([sys.executable, "-c", script], env={**os.environ, **flow_env}, capture_output=True,
                          text=True, check=False)
    assert read.returncode == 0, read.stderr
    assert read.stdout.split() == [f"s3://{bucket}/{card_keys[0]}", "True"]
