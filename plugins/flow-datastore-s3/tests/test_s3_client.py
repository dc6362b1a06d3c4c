"""Metaflow's `S3` client (`from flow_datastore_s3 import S3`), against a real S3 server."""

from __future__ import annotations

import os
import subprocess
import sys

import boto3
import pytest
from flow_core.plugin_api import FlowError
from flow_datastore_s3 import (
    S3,
    MetaflowS3NotFound,
    MetaflowS3URLException,
    S3GetObject,
    S3PutObject,
)


@pytest.fixture
def endpoint(flow_env, seaweed, monkeypatch) -> str:
    """Flow's settings (no profile, no stray METAFLOW_*) with the test server as S3 endpoint."""
    monkeypatch.setenv("METAFLOW_S3_ENDPOINT_URL", seaweed.endpoint_url)
    return seaweed.endpoint_url


def keys_in(endpoint_url: str, bucket: str) -> list[str]:
    pages = boto3.client("s3", endpoint_url=endpoint_url).get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", ()))


def test_put_and_get_str_and_bytes_through_local_files_removed_on_exit(endpoint, bucket):
    with S3(s3root=f"s3://{bucket}/some/root/") as s3:
        url = s3.put("greeting.txt", "héllo")
        assert url == f"s3://{bucket}/some/root/greeting.txt"
        s3.put("raw/bytes", b"\x00\x01\x02")
        text, raw = s3.get("greeting.txt"), s3.get("raw/bytes")
        assert (text.text, text.blob, text.size, text.key, text.url) == ("héllo", "héllo".encode(), 6, "greeting.txt", url)
        assert text.exists and text.downloaded
        assert (raw.blob, raw.key) == (b"\x00\x01\x02", "raw/bytes")
        with open(raw.path, "rb") as local:
            assert local.read() == b"\x00\x01\x02"
        paths = [text.path, raw.path]
    assert not any(os.path.exists(p) for p in paths)
    assert keys_in(endpoint, bucket) == ["some/root/greeting.txt", "some/root/raw/bytes"]


def test_a_missing_key_raises_not_found_unless_return_missing(endpoint, bucket):
    with S3(s3root=f"s3://{bucket}/root") as s3:
        s3.put("here", "x")
        with pytest.raises(MetaflowS3NotFound) as raised:
            s3.get("not-here")
        assert isinstance(raised.value, FlowError) and isinstance(raised.value, KeyError)
        assert f"s3://{bucket}/root/not-here" in str(raised.value)
        with pytest.raises(MetaflowS3NotFound):
            s3.get_many(["here", "not-here"])
        missing = s3.get("not-here", return_missing=True)
        assert (missing.exists, missing.downloaded, missing.blob, missing.key) == (False, False, None, "not-here")
        both = s3.get_many(["not-here", "here"], return_missing=True)
        assert [(o.key, o.exists, o.text) for o in both] == [("not-here", False, None), ("here", True, "x")]
        assert s3.info("not-here", return_missing=True).exists is False
        with pytest.raises(MetaflowS3NotFound):
            s3.info("not-here")


def test_put_many_and_get_many_keep_order_and_overwrite_false_keeps_what_is_there(endpoint, bucket):
    items = [(f"batch/{i:04}", f"value {i}") for i in range(300)]
    with S3(bucket=bucket, prefix="/many/") as s3:
        written = s3.put_many(items)
        assert written == [(k, f"s3://{bucket}/many/{k}") for k, _ in items]
        got = s3.get_many([k for k, _ in reversed(items)])
        assert [(o.key, o.text) for o in got] == [(k, v) for k, v in reversed(items)]
        again = s3.put_many([("batch/0000", "changed"), ("batch/new", "new")], overwrite=False)
        assert again == [("batch/new", f"s3://{bucket}/many/batch/new")]
        assert s3.get("batch/0000").text == "value 0"
        assert s3.put("batch/0001", "changed") and s3.get("batch/0001").text == "changed"


def test_put_files_uploads_local_files_and_a_missing_one_is_not_found(endpoint, bucket, tmp_path):
    (tmp_path / "a.csv").write_text("a,b\n1,2\n")
    (tmp_path / "b.bin").write_bytes(b"b" * 1000)
    with S3(s3root=f"s3://{bucket}/files") as s3:
        written = s3.put_files([("a.csv", str(tmp_path / "a.csv")),
                                S3PutObject("b.bin", path=str(tmp_path / "b.bin"), metadata={"origin": "test"})])
        assert [k for k, _ in written] == ["a.csv", "b.bin"]
        assert s3.get("a.csv").text == "a,b\n1,2\n"
        b = s3.get("b.bin")
        assert (b.size, b.metadata) == (1000, {"origin": "test"})
        with pytest.raises(MetaflowS3NotFound, match="Local file not found"):
            s3.put_files([("c", str(tmp_path / "nope"))])


def test_content_type_metadata_info_and_ranges(endpoint, bucket):
    with S3(s3root=f"s3://{bucket}/info") as s3:
        s3.put("doc.json", '{"a": 1}', content_type="application/json", metadata={"owner": "me"})
        s3.put_many([S3PutObject("digits", "0123456789", content_type="text/plain")])
        info = s3.info("doc.json")
        assert (info.exists, info.downloaded, info.size) == (True, False, 8)
        assert (info.content_type, info.metadata) == ("application/json", {"owner": "me"})
        assert info.last_modified and info.has_info
        got = s3.get("doc.json")
        assert (got.content_type, got.metadata, got.text) == ("application/json", {"owner": "me"}, '{"a": 1}')
        assert [o.size for o in s3.info_many(["doc.json", "digits"])] == [8, 10]
        middle, tail = s3.get_many([S3GetObject("digits", 2, 3), S3GetObject("digits", 0, -4)])
        assert (middle.text, middle.range_info) == ("234", (10, 2, 3))
        assert (tail.text, tail.range_info.total_size, tail.range_info.request_offset) == ("6789", 10, 6)


def test_listing_and_recursive_gets_follow_metaflows_hierarchy(endpoint, bucket):
    tree = ["a/0.txt", "a/b/1.txt", "a/c/2.txt", "a/d/e/3.txt", "f/4.txt", "ab.txt"]
    with S3(s3root=f"s3://{bucket}/tree") as s3:
        s3.put_many([(k, k.upper()) for k in tree])
        paths = s3.list_paths(["a", "f"])
        assert sorted((o.key, o.exists) for o in paths) == [
            ("0.txt", True), ("4.txt", True), ("b", False), ("c", False), ("d", False)]
        assert {o.url for o in paths if not o.exists} == {f"s3://{bucket}/tree/a/{d}/" for d in "bcd"}
        assert sorted(o.key for o in s3.list_paths()) == ["a", "ab.txt", "f"]
        recursive = s3.list_recursive(["a"])
        assert sorted(o.key for o in recursive) == ["0.txt", "b/1.txt", "c/2.txt", "d/e/3.txt"]  # not ab.txt
        assert all(o.exists and not o.downloaded for o in recursive)
        assert sorted(o.key for o in s3.list_recursive()) == sorted(tree)
        got = s3.get_recursive(["a/d", "f"])
        assert sorted((o.key, o.text) for o in got) == [("4.txt", "F/4.TXT"), ("e/3.txt", "A/D/E/3.TXT")]
        everything = s3.get_all()
        assert sorted((o.key, o.text) for o in everything) == sorted((k, k.upper()) for k in tree)


def test_full_urls_without_a_root_and_clear_errors_for_mixing_them(endpoint, bucket):
    with S3() as s3:
        url = f"s3://{bucket}/full/path.txt"
        assert s3.put(url, "full") == url
        got = s3.get(url)
        assert (got.key, got.text) == (url, "full")
        with pytest.raises(MetaflowS3URLException, match="not a full s3:// URL"):
            s3.get("relative/key")
    with S3(s3root=f"s3://{bucket}/full") as rooted:
        with pytest.raises(MetaflowS3URLException, match="relative"):
            rooted.get(url)
    with pytest.raises(MetaflowS3URLException):
        S3(s3root="/local/folder")


def test_objects_from_32_mib_go_up_and_down_in_parts(endpoint, bucket):
    big = os.urandom(1024 * 1024) * 40
    with S3(s3root=f"s3://{bucket}/big") as s3:
        s3.put("big.bin", big)
        got = s3.get("big.bin")
        assert got.size == len(big) and got.blob == big


def test_s3_run_self_inside_steps_and_a_client_run_outside(s3_env, flow_cli, flow_env, write_flow, bucket, seaweed):
    path = write_flow("datatools.py", """
        from flow_core import FlowSpec, step
        from flow_datastore_s3 import S3

        class DataTools(FlowSpec):
            @step
            def start(self):
                with S3(run=self) as s3:
                    self.url = s3.put("shared/note.txt", "written in start")
                self.next(self.end)

            @step
            def end(self):
                with S3(run=self) as s3:
                    print("read:", s3.get("shared/note.txt").text)

        if __name__ == "__main__":
            DataTools()
    """)
    result = flow_cli("run", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "read: written in start" in result.stdout
    note_keys = [k for k in keys_in(seaweed.endpoint_url, bucket) if k.endswith("note.txt")]
    assert len(note_keys) == 1
    run_id = note_keys[0].split("/")[3]
    assert note_keys == [f"flow/data/DataTools/{run_id}/shared/note.txt"]  # <sysroot>/data/<flow>/<run>

    script = ("from flow_core import Flow\nfrom flow_datastore_s3 import S3\n"
              "run = Flow('DataTools').latest_run\n"
              "with S3(run=run) as s3:\n    print(run.data.url == s3.get('shared/note.txt').url, s3.get('shared/note.txt').text)\n")
    read = subprocess.run([sys.executable, "-c", script], env={**os.environ, **flow_env}, capture_output=True, text=True)
    assert read.stdout.strip() == "True written in start", read.stderr


def test_run_roots_follow_datatools_s3root_and_need_a_running_flow(endpoint, bucket, monkeypatch):
    class FakeRun:
        pathspec = "SomeFlow/42"

    monkeypatch.setenv("METAFLOW_DATASTORE_SYSROOT_S3", f"s3://{bucket}/sys")
    with S3(run=FakeRun()) as s3:
        assert s3.put("k", "v") == f"s3://{bucket}/sys/data/SomeFlow/42/k"
    monkeypatch.setenv("METAFLOW_DATATOOLS_S3ROOT", f"s3://{bucket}/tools/")
    with S3(run=FakeRun()) as s3:
        assert s3.put("k", "v") == f"s3://{bucket}/tools/SomeFlow/42/k"
    with S3(run=FakeRun(), prefix="other") as s3:
        assert s3.put("k", "v") == f"s3://{bucket}/other/SomeFlow/42/k"

    from flow_core import FlowSpec

    with pytest.raises(MetaflowS3URLException, match="inside a running step"):
        S3(run=FlowSpec.__new__(FlowSpec))


def test_importing_the_plugin_does_not_load_boto3():
    code = ("import sys, flow_datastore_s3.plugin\nassert 'boto3' not in sys.modules\n"
            "from flow_datastore_s3 import S3\nassert 'boto3' in sys.modules and S3.__name__ == 'S3'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_s3_is_importable_from_flow_core_as_from_metaflow():
    code = ("from flow_core import S3, S3Object\nimport flow_datastore_s3\n"
            "assert S3 is flow_datastore_s3.S3 and S3Object is flow_datastore_s3.S3Object\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
