"""What a batch of metadata fields does to its task and run.

Metaflow's clients report a task's life as metadata: ``attempt`` starts an attempt and
``attempt_ok`` (tagged ``attempt_id:N``) ends one. The service keeps the outcome in the
task's and run's own columns so that listings need no scan of the metadata. Folding a batch
into one change here lets the store write fields and state in a single statement.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from .ids import attempt_from_tags, is_number


@attrs.frozen
class AttemptChange:
    attempt: int | None = None  #: the highest attempt the fields name
    status: str | None = None  #: the task's status after the fields; None: unchanged
    finished_at: int | None = None  #: when the task's last attempt ended (None while one runs)
    run_failed: bool = False  #: an attempt failed, so a run that stops now failed
    run_succeeded: bool = False  #: the end step succeeded, so the run did

    @classmethod
    def of(cls, fields: Sequence[dict], step: str, now: int) -> AttemptChange:
        attempt, status, finished_at, failed, succeeded = None, None, None, False, False
        for field in fields:
            if field["field_name"] == "attempt" and is_number(field["value"]):
                number = int(field["value"])
                status, finished_at = "running", None
            elif field["field_name"] == "attempt_ok" and (number := attempt_from_tags(field.get("tags"))) is not None:
                ok = field["value"] == "True"
                status, finished_at = ("succeeded" if ok else "failed"), now
                failed = failed or not ok
                succeeded = succeeded or (ok and step == "end")
            else:
                continue
            attempt = number if attempt is None else max(attempt, number)
        return cls(attempt, status, finished_at, failed, succeeded)
