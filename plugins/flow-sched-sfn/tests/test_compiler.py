"""The compiler from a flow's graph to Amazon States Language.

Golden tests compare each definition with ``tests/golden/<name>.json`` exactly. After an
intended change, regenerate them and review the diff by eye::

    FLOW_SFN_REGENERATE_GOLDEN=1 uv run pytest -q plugins/flow-sched-sfn/tests

Every definition is also validated by npm's asl-validator (see `flow_sched_sfn.testing`).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from flow_core import FlowSpec, parallel, step
from flow_core.model.graph import FlowGraph
from flow_core.plugin_api import FlowError

from flow_sched_sfn import limits
from flow_sched_sfn.compiler import (CompileError, CompileOptions, StepJob, compile_state_machine,
                                     definition_json)
from flow_sched_sfn.foreach_objects import (COUNT_SUFFIX, ITEMS_SUFFIX, foreach_key_format,
                                            foreach_object_keys)

GOLDEN = Path(__file__).parent / "golden"
REGENERATE = bool(os.environ.get("FLOW_SFN_REGENERATE_GOLDEN"))
OPTIONS = CompileOptions(job_queue="arn:aws:batch:us-east-1:123456789012:job-queue/flow",
                         foreach_root="s3://flow-bucket/flow-root")


# -- flows --------------------------------------------------------------------------------------

class LinearFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.middle)

    @step
    def middle(self):
        self.next(self.end)

    @step
    def end(self):
        pass


class BranchFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.a, self.b)

    @step
    def a(self):
        self.next(self.join)

    @step
    def b(self):
        self.next(self.b2)

    @step
    def b2(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


class ForeachFlow(FlowSpec):
    @step
    def start(self):
        self.items = [1, 2, 3]
        self.next(self.work, foreach="items")

    @step
    def work(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


class NestedForeachFlow(FlowSpec):
    @step
    def start(self):
        self.outer = [1, 2]
        self.next(self.fan, foreach="outer")

    @step
    def fan(self):
        self.inner = [1, 2, 3]
        self.next(self.leaf, foreach="inner")

    @step
    def leaf(self):
        self.next(self.inner_join)

    @step
    def inner_join(self, inputs):
        self.next(self.outer_join)

    @step
    def outer_join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


class SwitchFlow(FlowSpec):
    @step
    def start(self):
        self.mode = "a"
        self.next({"a": self.a, "b": self.b}, condition="mode")

    @step
    def a(self):
        self.next(self.end)

    @step
    def b(self):
        self.next(self.end)

    @step
    def end(self):
        pass


class GangFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.train, num_parallel=2)

    @parallel
    @step
    def train(self):
        self.next(self.gather)

    @step
    def gather(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


# -- helpers ------------------------------------------------------------------------------------

def graph_of(flow_cls) -> FlowGraph:
    return FlowGraph(flow_cls)


def jobs_for(graph: FlowGraph, **special: StepJob) -> dict[str, StepJob]:
    jobs = {node.name: StepJob(f"arn:aws:batch:us-east-1:123456789012:job-definition/{graph.name}-{node.name}:1")
            for node in graph}
    jobs.update(special)
    return jobs


def compile_flow(flow_cls, options: CompileOptions = OPTIONS, **special: StepJob) -> dict:
    graph = graph_of(flow_cls)
    return compile_state_machine(graph, graph.name, jobs_for(graph, **special), options)


def check_golden(name: str, definition: dict) -> None:
    path = GOLDEN / f"{name}.json"
    text = definition_json(definition)
    if REGENERATE or not path.exists():
        path.write_text(text)
        if not REGENERATE:
            pytest.fail(f"wrote {path.name}: review it, then run the tests again")
    assert text == path.read_text(), f"{path.name} differs; FLOW_SFN_REGENERATE_GOLDEN=1 rewrites it"


def all_states(states: dict, depth: int = 0):
    """Every (name, state) of a States object, inside Parallel branches and Map bodies too."""
    for name, state, _depth in states_with_depth(states):
        yield name, state


def states_with_depth(states: dict, depth: int = 0):
    """Every (name, state, foreach depth) of a States object."""
    for name, state in states.items():
        yield name, state, depth
        for branch in state.get("Branches", []):
            yield from states_with_depth(branch["States"], depth)
        if "ItemProcessor" in state:
            yield from states_with_depth(state["ItemProcessor"]["States"], depth + 1)


# -- golden definitions -------------------------------------------------------------------------

GOLDEN_FLOWS = {
    "linear": (LinearFlow, {"middle": StepJob("arn:aws:batch:us-east-1:123456789012:job-definition/LinearFlow-middle:1",
                                              timeout_seconds=600, retries=3, retry_interval_seconds=120)}),
    "branch": (BranchFlow, {}),
    "foreach": (ForeachFlow, {}),
    "nested_foreach": (NestedForeachFlow, {}),
}


@pytest.mark.parametrize("name", sorted(GOLDEN_FLOWS))
def test_golden(name, asl_validator):
    flow_cls, special = GOLDEN_FLOWS[name]
    definition = compile_flow(flow_cls, **special)
    asl_validator.check(definition)
    check_golden(name, definition)


@pytest.mark.parametrize("name", sorted(GOLDEN_FLOWS))
def test_state_names_are_unique_and_short(name):
    definition = compile_flow(GOLDEN_FLOWS[name][0])
    names = [n for n, _ in all_states(definition["States"])]
    assert len(names) == len(set(names))
    assert all(len(n) <= 80 and re.fullmatch(r"[A-Za-z0-9_.\-]+", n) for n in names)


def test_linear_task_carries_ids_retry_and_timeout():
    definition = compile_flow(LinearFlow, middle=StepJob("arn:jd/middle", timeout_seconds=30, retries=2,
                                                         retry_interval_seconds=60))
    middle = definition["States"]["middle"]
    assert middle["Resource"] == "arn:aws:states:::batch:submitJob.sync"
    assert middle["ResultPath"] is None
    assert middle["Parameters"]["Timeout"] == {"AttemptDurationSeconds": 60}  # Batch's minimum
    assert middle["Retry"] == [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 60, "MaxAttempts": 2,
                                "BackoffRate": 1}]
    assert middle["Parameters"]["Parameters"]["input_paths.$"] == "States.Format('{}/start/sfn{}', $.run_id, $.stack)"
    start = definition["States"]["start"]["Parameters"]["Parameters"]
    assert start["parameters.$"] == "States.JsonToString($.parameters)"
    assert start["input_paths.$"] == "States.Format('{}/_parameters/params', $.run_id)"
    assert "Retry" not in definition["States"]["start"]


def test_task_states_carry_only_short_parameters():
    """No code, no environment, no command: only ids, each bounded (worst case well under 8 KiB)."""
    definition = compile_flow(NestedForeachFlow)
    tasks = [(n, s, d) for n, s, d in states_with_depth(definition["States"])
             if s.get("Resource", "").startswith("arn:aws:states:::batch")]
    assert {d for _n, _s, d in tasks} == {0, 1, 2}
    for name, state, depth in tasks:
        submission = state["Parameters"]
        assert set(submission) <= {"JobName.$", "JobQueue", "JobDefinition", "Parameters", "Timeout"}, name
        assert set(submission["Parameters"]) <= {"run_id.$", "task_id.$", "input_paths.$", "retry_count.$",
                                                 "split_index.$", "parameters.$", "execution.$"}, name
        assert limits.json_size(submission["Parameters"]) < 1024, name
        text = json.dumps(submission)
        for banned in ("ContainerOverrides", "Environment", "Command", "python", "flow step", "METAFLOW"):
            assert banned not in text, (name, banned)
        # with an 80-character execution name and million-wide foreach, the ids stay under 1 KiB
        longest = limits.worst_case(submission, limits.worst_case_values(depth))["Parameters"]
        ids = {key: value for key, value in longest.items() if key != "parameters"}
        assert limits.json_size(ids) < 1024, name
        assert limits.json_size(longest) <= limits.BATCH_PARAMETERS_BUDGET < limits.BATCH_OVERRIDE_LIMIT


def test_input_paths_of_foreach_body_and_join():
    states = compile_flow(ForeachFlow)["States"]
    body = states["start.map"]["ItemProcessor"]["States"]
    assert body["work"]["Parameters"]["Parameters"]["input_paths.$"] == \
        "States.Format('{}/start/sfn{}', $.run_id, $.parent_stack)"
    assert body["work"]["Parameters"]["Parameters"]["split_index.$"] == "$.split_index"
    assert states["join"]["Parameters"]["Parameters"]["input_paths.$"] == \
        "States.Format('{}/work/sfn{}-*', $.run_id, $.stack)"
    assert "split_index.$" not in states["join"]["Parameters"]["Parameters"]
    wide_body = states["start.map-wide"]["ItemProcessor"]["States"]
    assert set(wide_body) == {"work.wide1"}


def test_branch_join_reads_every_branch():
    states = compile_flow(BranchFlow)["States"]
    assert states["start"]["Next"] == "start.branches"
    assert states["start.branches"]["Next"] == "join"
    assert states["join"]["Parameters"]["Parameters"]["input_paths.$"] == \
        "States.Format('{}/a/sfn{},{}/b2/sfn{}', $.run_id, $.stack, $.run_id, $.stack)"


def test_foreach_keys_in_python_and_in_asl_agree():
    objects = foreach_object_keys("s3://flow-bucket/flow-root/", "ForeachFlow", "sfn-exec1", "start", (3, 1))
    assert objects.bucket == "flow-bucket"
    assert objects.count_key == "flow-root/ForeachFlow/sfn-foreach/sfn-exec1/start/sfn-3-1.json"
    assert objects.items_key == "flow-root/ForeachFlow/sfn-foreach/sfn-exec1/start/sfn-3-1.items.json"
    values = {"$.run_id": "sfn-exec1", "$.stack": "-3-1"}
    for suffix, key in ((COUNT_SUFFIX, objects.count_key), (ITEMS_SUFFIX, objects.items_key)):
        bucket, expression = foreach_key_format("s3://flow-bucket/flow-root/", "ForeachFlow", "start", suffix)
        assert bucket == "flow-bucket"
        assert limits.evaluate(expression, values) == key
    # a root without a prefix, and odd characters that intrinsic functions must escape
    assert foreach_object_keys("s3://b", "F", "r", "s").count_key == "F/sfn-foreach/r/s/sfn.json"
    bucket, expression = foreach_key_format("s3://b/we{ir}d'", "F", "s", COUNT_SUFFIX)
    assert limits.evaluate(expression, {"$.run_id": "r", "$.stack": ""}) == "we{ir}d'/F/sfn-foreach/r/s/sfn.json"


def test_run_context_works_without_parameters():
    states = compile_flow(LinearFlow)["States"]
    choice = states["run-context"]
    assert choice["Type"] == "Choice" and choice["Default"] == "run-context.no-parameters"
    assert states["run-context.no-parameters"]["Parameters"]["parameters"] == {}
    assert states["run-context.parameters"]["Parameters"]["parameters.$"] == "$.parameters"


def test_wide_foreach_options():
    options = CompileOptions(job_queue="q", foreach_root="s3://b/p", max_workers=64, inline_map_max=500)
    states = compile_flow(ForeachFlow, options)["States"]
    assert states["start.width"]["Choices"][0]["NumericGreaterThan"] == 500
    assert states["start.map"]["MaxConcurrency"] == 64
    assert states["start.map-wide"]["MaxConcurrency"] == 64
    assert states["start.map-wide"]["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED",
                                                                            "ExecutionType": "STANDARD"}


# -- refusals and limits ------------------------------------------------------------------------

LONG = "a_step_name_long_enough_to_push_its_derived_state_names_past_eighty_characters"


def test_too_long_step_name(write_flow):
    path = write_flow("long.py", f"""
        from flow_core import FlowSpec, step

        class LongFlow(FlowSpec):
            @step
            def start(self):
                self.items = [1]
                self.next(self.{LONG}, foreach="items")

            @step
            def {LONG}(self):
                self.next(self.join)

            @step
            def join(self, inputs):
                self.next(self.end)

            @step
            def end(self):
                pass
        """)
    from flow_core.model.loader import load_flow_class

    graph = FlowGraph(load_flow_class(path), str(path))
    with pytest.raises(CompileError) as err:
        compile_state_machine(graph, graph.name, jobs_for(graph), OPTIONS)
    message = str(err.value)
    assert f"step '{LONG}'" in message and "80" in message and "rename the step" in message
    assert isinstance(err.value, FlowError)


def test_job_name_limit_names_the_step(monkeypatch):
    monkeypatch.setattr(limits, "MAX_JOB_NAME", 90)
    with pytest.raises(CompileError, match="step 'middle' can make Batch job names"):
        compile_flow(LinearFlow)


def test_batch_parameters_limit_names_the_step(monkeypatch):
    monkeypatch.setattr(limits, "BATCH_PARAMETERS_BUDGET", 1000)
    with pytest.raises(CompileError, match="step 'start' can submit Batch parameters of .* bytes"):
        compile_flow(LinearFlow)


def test_definition_size_limit(monkeypatch):
    monkeypatch.setattr(limits, "MAX_DEFINITION_BYTES", 2000)
    with pytest.raises(CompileError, match="the state machine of NestedForeachFlow is .* step 'start'"):
        compile_flow(NestedForeachFlow)


def test_switch_is_refused():
    with pytest.raises(CompileError, match="step 'start' is a switch"):
        compile_flow(SwitchFlow)


def test_gang_is_refused():
    with pytest.raises(CompileError, match="step '(start|train)' is part of a @parallel gang"):
        compile_flow(GangFlow)


def test_missing_job_is_refused():
    graph = graph_of(LinearFlow)
    jobs = jobs_for(graph)
    del jobs["middle"]
    with pytest.raises(CompileError, match="step 'middle' has no Batch job"):
        compile_state_machine(graph, graph.name, jobs, OPTIONS)


def test_validator_reports_findings(asl_validator):
    problems = asl_validator.findings({"StartAt": "missing", "States": {"a": {"Type": "Pass", "End": True}}})
    assert problems
