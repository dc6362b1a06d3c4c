"""A running task's output saved while it runs: the schedule, the keys, and what a failed
save does (nothing to the task)."""

from __future__ import annotations

import threading

import pytest
from flow_core.backends.local_storage import LocalStorage
from flow_core.datastore.live_logs import live_log_key, read_live_log
from flow_core.datastore.run_check import check_run, run_ids
from flow_core.datastore.task_store import FlowDataStore
from flow_core.engine.live_log_saver import LiveLogSaver, save_delay
from flow_core.errors import ConfigError, DataStoreError
from flow_core.plugin.settings import Settings

PATHSPEC = "LiveFlow/7/start/1"


class GrowingCapture:
    """Stands for `OutputCapture`: output the test adds, and a count of the saver's polls."""

    def __init__(self) -> None:
        self.stdout = b""
        self.polls = 0
        self.polled = threading.Condition()

    def pieces(self) -> int:
        with self.polled:
            self.polls += 1
            self.polled.notify_all()
        return len(self.stdout)

    def so_far(self) -> dict[str, bytes]:
        return {"stdout": self.stdout, "stderr": b""}

    def wait_for_polls(self, count: int) -> None:
        with self.polled:
            assert self.polled.wait_for(lambda: self.polls >= count, timeout=60)


class CountingStorage(LocalStorage):
    def __init__(self, root, fail: bool = False):
        super().__init__(root)
        self.puts = 0
        self.fail = fail

    def put_many(self, items, overwrite=True):
        items = list(items)
        if any(key.endswith(".live") for key, _ in items):
            self.puts += 1
            if self.fail:
                raise DataStoreError("the store is down")
        super().put_many(items, overwrite)


def _start(saver: LiveLogSaver, capture: GrowingCapture) -> None:
    """What the capture's copying thread does once the first interval has passed."""
    seconds, start = saver.schedule()
    assert seconds == 0.01
    start(capture)


def _settings(**values: str) -> Settings:
    return Settings(environ={"METAFLOW_LIVE_LOGS_MIN_INTERVAL": "0.01", "METAFLOW_LIVE_LOGS_MAX_INTERVAL": "0.01",
                             **values})


def test_the_schedule_is_frequent_at_first_and_slows_to_the_longest_interval():
    delays = [save_delay(minutes * 60, 1.0, 30.0) for minutes in (0, 5, 10, 15, 20, 60)]
    assert delays == sorted(delays)
    assert delays[0] < 1.01 and delays[1] < 1.1  # the first minutes: every second
    assert 15 < delays[3] < 17  # half-way at a quarter hour
    assert 30.9 < delays[-1] <= 31.0  # an old task: the longest


def test_saves_only_when_the_task_wrote_something_new(tmp_path):
    storage = CountingStorage(tmp_path)
    capture = GrowingCapture()
    with LiveLogSaver(storage, PATHSPEC, 0, _settings()) as saver:
        _start(saver, capture)
        capture.wait_for_polls(3)
        assert storage.puts == 0 and not saver.saved  # nothing printed: nothing written
        capture.stdout = b"line one\n"
        capture.wait_for_polls(capture.polls + 3)
        assert read_live_log(storage, PATHSPEC, 0, "stdout") == b"line one\n"
        assert storage.puts == 1  # polled again since, with nothing new: no second write
    assert saver.saved
    saver.remove()
    assert read_live_log(storage, PATHSPEC, 0, "stdout") is None


def test_a_failing_store_never_reaches_the_task(tmp_path):
    storage = CountingStorage(tmp_path, fail=True)
    capture = GrowingCapture()
    capture.stdout = b"output\n"
    with LiveLogSaver(storage, PATHSPEC, 0, _settings()) as saver:
        _start(saver, capture)
        capture.wait_for_polls(3)
    assert storage.puts >= 2 and not saver.saved  # tried again at each tick, silently
    saver.remove()


def test_zero_turns_live_logs_off_and_a_bad_value_is_one_sentence(tmp_path):
    storage = CountingStorage(tmp_path)
    assert LiveLogSaver(storage, PATHSPEC, 0, _settings(METAFLOW_LIVE_LOGS_MIN_INTERVAL="0")).schedule() is None
    with pytest.raises(ConfigError, match="METAFLOW_LIVE_LOGS_MAX_INTERVAL is 'soon', which is not a number"):
        LiveLogSaver(storage, PATHSPEC, 0, _settings(METAFLOW_LIVE_LOGS_MAX_INTERVAL="soon"))


def test_live_copies_are_not_taken_for_committed_attempts(tmp_path):
    """Every reader that lists a run's or a task's keys skips them: a run whose only task is
    still running has no attempt to open and nothing for `verify` to check."""
    storage = LocalStorage(tmp_path)
    datastore = FlowDataStore(storage)
    storage.put(live_log_key(PATHSPEC, 0, "stdout"), b"still running\n")
    assert datastore.committed_attempts("LiveFlow", "7", "start", "1") == []
    assert run_ids(datastore, "LiveFlow") == []
    store = datastore.task("LiveFlow", "7", "start", "1", 0)
    store.save_log("stdout", b"final\n")
    store.commit()
    assert datastore.committed_attempts("LiveFlow", "7", "start", "1") == [0]
    assert [s.attempt for s in datastore.open_tasks("LiveFlow", ["7/start/1"])] == [0]
    assert run_ids(datastore, "LiveFlow") == ["7"]
    assert check_run(datastore, "LiveFlow", "7").indexes == 1


CALL_LATER_SCRIPT = """
import threading
from flow_core.engine.output_capture import OutputCapture

called = []
with OutputCapture(later=(3600, called.append)):  # a task shorter than its first interval
    pass
fired = threading.Event()
with OutputCapture(later=(0.01, lambda capture: fired.set())):  # a longer one
    print("waited", fired.wait(60))
print("RESULT", called, fired.is_set())
"""


def test_the_capture_calls_later_only_while_it_runs():
    """What lets a short task start no saving thread: the capture's copying thread starts it,
    once the first interval has passed, and never after the capture ended."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", CALL_LATER_SCRIPT], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-2:] == ["waited True", "RESULT [] True"]
