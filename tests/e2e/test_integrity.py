"""What a user sees when the datastore is damaged: a refusal naming the object, the artifact and
the task, never a wrong value; `verify` to find and remove damage; `resume` to write it again."""

from __future__ import annotations

import os
import textwrap
import time

import pytest
from flow_core.datastore.cas import blob_key
from flow_core.datastore.task_store import index_key
from flow_core.errors import DataStoreError
from flow_core.testing import run_id_of

FLOW = textwrap.dedent("""
    from flow_core import FlowSpec, step


    class DamageFlow(FlowSpec):
        @step
        def start(self):
            self.small = 12345
            self.text = "hello world"
            self.next(self.end)

        @step
        def end(self):
            self.total = self.small + 1
            print("total", self.total, self.text)


    if __name__ == "__main__":
        DamageFlow()
""")


@pytest.fixture
def flow_file(tmp_path):
    path = tmp_path / "damage_flow.py"
    path.write_text(FLOW)
    return path


@pytest.fixture
def finished_run(python_flow, flow_file):
    result = python_flow(flow_file, "run")
    assert result.returncode == 0, result.stderr
    return run_id_of(result.stdout)


def _flip_last_byte(records, key: str) -> None:
    path = records.datastore.storage.root / key
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x04
    path.write_bytes(bytes(data))


def _damage_artifact(records, run_id: str, step: str, name: str) -> str:
    store = records.task_store("DamageFlow", run_id, step)
    key = blob_key(store.artifact_records()[name].key)
    _flip_last_byte(records, key)
    return key


def test_dump_refuses_a_damaged_artifact_in_one_sentence(python_flow, flow_file, finished_run, records):
    key = _damage_artifact(records, finished_run, "start", "small")
    result = python_flow(flow_file, "dump", f"{finished_run}/start", "--include", "small")
    assert result.returncode == 1
    assert "12387" not in result.stdout and "small:" not in result.stdout
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: artifact 'small' of DamageFlow/") and key in line
    assert "Internal error" not in result.stderr


def test_the_client_raises_instead_of_returning_a_wrong_value(flow_env, finished_run, records):
    from flow_core import Run, namespace

    key = _damage_artifact(records, finished_run, "start", "small")
    namespace(None)
    (task,) = list(Run(f"DamageFlow/{finished_run}")["start"])
    assert task.data.text == "hello world"  # the intact artifact beside it still loads
    with pytest.raises(DataStoreError, match=key):
        _ = task.data.small
    assert task.successful  # what metadata says still answers


def test_verify_reports_damage_then_removal_and_resume_repair_it(python_flow, flow_file, finished_run, records):
    clean = python_flow(flow_file, "verify", finished_run)
    assert clean.returncode == 0 and "all intact" in clean.stdout

    key = _damage_artifact(records, finished_run, "start", "small")
    found = python_flow(flow_file, "verify", finished_run)
    assert found.returncode == 1
    assert key in found.stderr and "breaks artifact 'small' of DamageFlow/" in found.stderr

    # Resuming without repair refuses at the first reader instead of computing a wrong total.
    refused = python_flow(flow_file, "resume", "--origin-run-id", finished_run, "end")
    assert refused.returncode == 1 and "is damaged" in refused.stderr + refused.stdout
    assert "total 12388" not in refused.stdout

    removed = python_flow(flow_file, "verify", finished_run, "--remove-damaged")
    assert removed.returncode == 1 and "Removed 1 damaged object" in removed.stdout
    resumed = python_flow(flow_file, "resume", "--origin-run-id", finished_run)
    assert resumed.returncode == 0, resumed.stderr
    assert "total 12346 hello world" in resumed.stdout
    # The value was written again under its name, so the first run reads right too.
    after = python_flow(flow_file, "verify", "--all")
    assert after.returncode == 0, after.stderr
    assert records.artifact("DamageFlow", finished_run, "start", "small") == 12345


def test_verify_removes_temporary_files_left_by_killed_writers(python_flow, flow_file, finished_run, records):
    stale = records.datastore.storage.root / "data" / ".tmp-killed-writer"
    stale.write_bytes(b"half")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    result = python_flow(flow_file, "verify", finished_run)
    assert result.returncode == 0 and "Removed 1 temporary file" in result.stdout
    assert not stale.exists()


@pytest.mark.parametrize("damage", [lambda b: b[: len(b) // 2], lambda b: b"\xc1" + os.urandom(40)],
                         ids=["truncated", "garbage"])
def test_a_damaged_task_index_is_named_and_resume_runs_that_task_again(
        python_flow, flow_file, finished_run, records, damage):
    store = records.task_store("DamageFlow", finished_run, "start")
    task_id = store.pathspec.rsplit("/", 1)[1]
    key = index_key("DamageFlow", finished_run, "start", task_id, 0)
    path = records.datastore.storage.root / key
    path.write_bytes(damage(path.read_bytes()))

    dumped = python_flow(flow_file, "dump", f"{finished_run}/start")
    assert dumped.returncode == 1
    assert "Internal error" not in dumped.stderr
    (line,) = dumped.stderr.strip().splitlines()
    assert key in line and "damaged" in line

    resumed = python_flow(flow_file, "resume", "--origin-run-id", finished_run)
    assert resumed.returncode == 0, resumed.stderr
    assert "total 12346 hello world" in resumed.stdout
    assert f"Reused DamageFlow/{finished_run}/start/" not in resumed.stdout  # start ran again


def test_an_artifact_that_cannot_be_pickled_is_named_with_its_step(python_flow, tmp_path):
    flow_file = tmp_path / "lock_flow.py"
    flow_file.write_text(textwrap.dedent("""
        import threading
        from flow_core import FlowSpec, step


        class LockFlow(FlowSpec):
            @step
            def start(self):
                self.my_lock = threading.Lock()
                self.next(self.end)

            @step
            def end(self):
                pass


        if __name__ == "__main__":
            LockFlow()
    """))
    result = python_flow(flow_file, "run")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert "self.my_lock, set in step 'start', cannot be stored" in last
    assert "cannot pickle '_thread.lock' object" in last
    assert "Traceback" not in result.stderr + result.stdout
