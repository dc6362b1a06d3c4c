"""From a flow's graph to an Amazon States Language definition.

The README's "How a flow becomes a state machine" is the contract; in short:

- ``run-context`` (a Choice) and one of two Pass states turn the execution's input into the run
  context ``{"run_id": "sfn-<execution name>", "execution": "<its ARN>", "stack": "", "parameters":
  {...}}``: the Choice
  looks whether the input has ``"parameters"`` (``IsPresent``), so an input without it runs
  with ``{}`` instead of failing on a missing path.
- Every step is a Task state named after the step (``batch:submitJob.sync``, ``"ResultPath":
  null``) whose Batch ``Parameters`` hold only ids: ``run_id``, ``execution``, ``task_id``, ``input_paths``,
  ``retry_count``, ``split_index`` inside a foreach, and ``parameters`` for ``start``.
- A split is a Parallel state ``<split>.branches``; the join follows it.
- A foreach is its Task state, then ``<step>.splits`` (reads the count object, see
  `flow_sched_sfn.foreach_objects`), ``<step>.width`` (a Choice), then either ``<step>.range``
  (a Pass building ``States.ArrayRange``) and the inline Map ``<step>.map``, or the Distributed
  Map ``<step>.map-wide`` reading the items object; the join follows both.

Two additions to the README's run context, both made by the Maps' ``ItemSelector``:
``split_index`` (the iteration's index as a string, for ``--split-index``: ASL cannot take
the last part of ``stack`` reliably) and ``parent_stack`` (the foreach task's own ``stack``,
for the input path of the first step of the body, whose parent is the foreach task).

Map results stay small: the last Task state of a foreach body has ``"OutputPath":
"$.split_index"``, and the Distributed Map writes its children's results to S3
(``ResultWriter``, under ``<foreach_root>/<flow>/sfn-foreach-results``) instead of its output.

State names are unique across the whole machine, as ASL requires: the Distributed Map's copy
of a foreach body carries the suffix ``.wide<depth>`` on every state name (``.wide1`` for the
outermost foreach, ``.wide2`` for one nested in it...).
"""

from __future__ import annotations

import json
from typing import Any, Mapping

import attrs
from flow_core.plugin_api import FlowError

from flow_sched_sfn import limits
from flow_sched_sfn.foreach_objects import COUNT_SUFFIX, ITEMS_SUFFIX, foreach_key_format, split_root

# Node types of flow_core's graph (Metaflow's names); plugins read them as plain strings.
START, END = "start", "end"
LINEAR, SPLIT, FOREACH, JOIN, SWITCH = "linear", "split", "foreach", "join", "split-switch"

#: The ``_parameters`` task `start` reads (flow_core.engine.run_start's default for orchestrators).
PARAMETERS_INPUT = "_parameters/params"

BATCH_SUBMIT = "arn:aws:states:::batch:submitJob.sync"
S3_GET_OBJECT_SDK = "arn:aws:states:::aws-sdk:s3:getObject"
S3_GET_OBJECT = "arn:aws:states:::s3:getObject"
S3_PUT_OBJECT = "arn:aws:states:::s3:putObject"

RUN_CONTEXT = "run-context"
RUN_CONTEXT_GIVEN = "run-context.parameters"
RUN_CONTEXT_NONE = "run-context.no-parameters"
#: AWS Batch's smallest attempt timeout.
MIN_BATCH_TIMEOUT = 60


@attrs.frozen
class StepJob:
    """What the deployer prepared for one step."""

    job_definition: str
    """The step's Batch job definition ARN."""
    timeout_seconds: int | None = None
    retries: int = 0
    """Attempts after the first (@retry times + @catch's one)."""
    retry_interval_seconds: int = 0


@attrs.frozen
class CompileOptions:
    job_queue: str
    foreach_root: str
    """``s3://bucket/prefix``: METAFLOW_DATASTORE_SYSROOT_S3; foreach objects live under it."""
    max_workers: int = 16
    """Map MaxConcurrency."""
    inline_map_max: int = 40
    """A foreach wider than this runs as a Distributed Map."""


class CompileError(FlowError):
    """The flow cannot become a state machine; the message names the step."""


@attrs.frozen
class _Scope:
    """Where in the machine a chain of states is: how deep in foreach, and the suffix that keeps
    the state names of a Distributed Map's copy of a body unique."""

    depth: int = 0
    suffix: str = ""


class _Compiler:
    def __init__(self, graph: Any, flow_name: str, jobs: Mapping[str, StepJob], options: CompileOptions):
        self.graph = graph
        self.flow_name = flow_name
        self.jobs = jobs
        self.options = options
        self.nodes = {node.name: node for node in graph}
        #: join name -> the split or foreach it closes
        self.closes = {node.matching_join: node for node in self.nodes.values() if node.matching_join}

    # -- the whole machine ---------------------------------------------------------------

    def compile(self) -> dict:
        self._refuse_unsupported()
        missing = [name for name in self.nodes if name not in self.jobs]
        if missing:
            raise CompileError(f"step '{missing[0]}' has no Batch job prepared for it; deploy every step with a job")
        start_at, states = self._chain(START, None, _Scope())
        context = {"run_id.$": "States.Format('sfn-{}', $$.Execution.Name)", "execution.$": "$$.Execution.Id",
                   "stack": ""}
        definition = {
            "Comment": f"Flow {self.flow_name}, compiled by flow-sched-sfn",
            "StartAt": RUN_CONTEXT,
            "States": {
                RUN_CONTEXT: {
                    "Type": "Choice",
                    "Choices": [{
                        "And": [{"Variable": "$.parameters", "IsPresent": True},
                                {"Not": {"Variable": "$.parameters", "IsNull": True}}],
                        "Next": RUN_CONTEXT_GIVEN,
                    }],
                    "Default": RUN_CONTEXT_NONE,
                },
                RUN_CONTEXT_GIVEN: {"Type": "Pass", "Parameters": {**context, "parameters.$": "$.parameters"},
                                    "Next": start_at},
                RUN_CONTEXT_NONE: {"Type": "Pass", "Parameters": {**context, "parameters": {}}, "Next": start_at},
                **states,
            },
        }
        self._check_size(definition)
        return definition

    def _refuse_unsupported(self) -> None:
        for node in self.nodes.values():
            if node.type == SWITCH:
                raise CompileError(f"step '{node.name}' is a switch, which Step Functions deployments do not "
                                   "support yet; use a split or run the flow with `flow run`")
            if node.parallel_step or node.num_parallel_expr is not None:
                raise CompileError(f"step '{node.name}' is part of a @parallel gang, which Step Functions "
                                   "deployments do not support yet; run it with `flow run --compute batch`")

    def _check_size(self, definition: dict) -> None:
        size = limits.json_size(definition)
        if size <= limits.MAX_DEFINITION_BYTES:
            return
        biggest = max(self.nodes, key=lambda name: limits.json_size(definition["States"].get(name, {})))
        raise CompileError(
            f"the state machine of {self.flow_name} is {size} bytes, more than the {limits.MAX_DEFINITION_BYTES} "
            f"Step Functions takes; step '{biggest}' holds the largest part, so nest fewer foreach there")

    # -- chains of states ------------------------------------------------------------------

    def _chain(self, first: str, stop: str | None, scope: _Scope, ends_body: bool = False) -> tuple[str, dict]:
        """The states from step ``first`` up to (not including) step ``stop``, linked in order;
        the last ones end (``ends_body``: they end an iteration of a foreach). Returns the first
        state's name and the states."""
        states: dict[str, dict] = {}
        waiting: list[dict] = []  # states whose Next is the next state added
        start_at: str | None = None

        def add(name: str, state: dict, step: str) -> None:
            nonlocal start_at
            self._check_name(name, step)
            if name in states:  # the graph is a tree of chains, so this is a bug of ours
                raise AssertionError(f"state {name!r} made twice")
            for previous in waiting:
                previous["Next"] = name
            waiting.clear()
            states[name] = state
            if start_at is None:
                start_at = name

        current: str | None = first
        while current is not None and current != stop:
            node = self.nodes[current]
            task = self._task(node, scope, last_of_body=ends_body and node.out_funcs == [stop])
            add(self._name(node.name, scope), task, node.name)
            waiting.append(task)
            if node.type == FOREACH:
                for name, state in self._foreach(node, scope):
                    add(name, state, node.name)
                    if state["Type"] != "Choice" and "Next" not in state:
                        waiting.append(state)
                current = node.matching_join
            elif node.type == SPLIT:
                parallel = {"Type": "Parallel", "Branches": [], "ResultPath": None}
                for branch in node.out_funcs:
                    branch_start, branch_states = self._chain(branch, node.matching_join, scope)
                    parallel["Branches"].append({"StartAt": branch_start, "States": branch_states})
                add(self._name(f"{node.name}.branches", scope), parallel, node.name)
                waiting.append(parallel)
                current = node.matching_join
            else:
                current = node.out_funcs[0] if node.out_funcs else None
        for previous in waiting:
            previous["End"] = True
        assert start_at is not None
        return start_at, states

    def _foreach(self, node: Any, scope: _Scope) -> list[tuple[str, dict]]:
        """The states after a foreach step's Task state, up to its join."""
        step = node.name
        body = node.out_funcs[0]
        join = self._name(node.matching_join, scope)
        splits, width = self._name(f"{step}.splits", scope), self._name(f"{step}.width", scope)
        range_, inline, wide = (self._name(f"{step}.range", scope), self._name(f"{step}.map", scope),
                                self._name(f"{step}.map-wide", scope))
        bucket, count_key = foreach_key_format(self.options.foreach_root, self.flow_name, step, COUNT_SUFFIX)
        _, items_key = foreach_key_format(self.options.foreach_root, self.flow_name, step, ITEMS_SUFFIX)
        inner = _Scope(scope.depth + 1, scope.suffix)
        inner_wide = _Scope(scope.depth + 1, f"{scope.suffix}.wide{scope.depth + 1}")
        inline_start, inline_states = self._chain(body, node.matching_join, inner, ends_body=True)
        wide_start, wide_states = self._chain(body, node.matching_join, inner_wide, ends_body=True)
        results_bucket, results_prefix = split_root(self.options.foreach_root)
        results_prefix = "/".join(p for p in (results_prefix, self.flow_name, "sfn-foreach-results") if p)
        item_selector = {
            "run_id.$": "$.run_id",
            "execution.$": "$.execution",
            "stack.$": "States.Format('{}-{}', $.stack, $$.Map.Item.Value)",
            "parameters": {},
            "split_index.$": "States.Format('{}', $$.Map.Item.Value)",
            "parent_stack.$": "$.stack",
        }
        return [
            (splits, {
                "Type": "Task",
                "Resource": S3_GET_OBJECT_SDK,
                "Parameters": {"Bucket": bucket, "Key.$": count_key},
                "ResultSelector": {"object.$": "States.StringToJson($.Body)"},
                "ResultPath": "$.foreach",
            }),
            (width, {
                "Type": "Choice",
                "Choices": [{"Variable": "$.foreach.object.count", "NumericGreaterThan": self.options.inline_map_max,
                             "Next": wide}],
                "Default": range_,
            }),
            (range_, {
                "Type": "Pass",
                "Parameters": {"items.$": "States.ArrayRange(0, States.MathAdd($.foreach.object.count, -1), 1)"},
                "ResultPath": "$.foreach.range",
                "Next": inline,
            }),
            (inline, {
                "Type": "Map",
                "ItemsPath": "$.foreach.range.items",
                "ItemSelector": item_selector,
                "MaxConcurrency": self.options.max_workers,
                "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": inline_start,
                                  "States": inline_states},
                "ResultPath": None,
                "Next": join,
            }),
            (wide, {
                "Type": "Map",
                "ItemReader": {
                    "Resource": S3_GET_OBJECT,
                    "ReaderConfig": {"InputType": "JSON"},
                    "Parameters": {"Bucket": bucket, "Key.$": items_key},
                },
                "ItemSelector": item_selector,
                "MaxConcurrency": self.options.max_workers,
                "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                                  "StartAt": wide_start, "States": wide_states},
                # Without it the children's outputs come back as one array, which a foreach of
                # a million splits would grow past the 256 KiB a state may pass on.
                "ResultWriter": {"Resource": S3_PUT_OBJECT,
                                 "Parameters": {"Bucket": results_bucket, "Prefix": results_prefix}},
                "ResultPath": None,
                "Next": join,
            }),
        ]

    # -- one step ----------------------------------------------------------------------------

    def _task(self, node: Any, scope: _Scope, last_of_body: bool) -> dict:
        job = self.jobs[node.name]
        parameters = {
            "run_id.$": "$.run_id",
            "task_id.$": "States.Format('sfn{}', $.stack)",
            "input_paths.$": self._input_paths(node),
            "retry_count.$": "States.Format('{}', $$.State.RetryCount)",
            "execution.$": "$.execution",
        }
        if scope.depth:
            parameters["split_index.$"] = "$.split_index"
        if node.name == START:
            parameters["parameters.$"] = "States.JsonToString($.parameters)"
        submission: dict[str, Any] = {
            "JobName.$": f"States.Format('{{}}-{node.name}{{}}', $.run_id, $.stack)",
            "JobQueue": self.options.job_queue,
            "JobDefinition": job.job_definition,
            "Parameters": parameters,
        }
        if job.timeout_seconds:
            submission["Timeout"] = {"AttemptDurationSeconds": max(int(job.timeout_seconds), MIN_BATCH_TIMEOUT)}
        self._check_submission(node.name, submission, scope.depth)
        task: dict[str, Any] = {"Type": "Task", "Resource": BATCH_SUBMIT, "Parameters": submission,
                                "ResultPath": None}
        if last_of_body:
            # Each iteration's output joins the Map's result array: keep it to a few bytes.
            task["OutputPath"] = "$.split_index"
        if job.retries > 0:
            task["Retry"] = [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": max(int(job.retry_interval_seconds), 1),
                              "MaxAttempts": int(job.retries), "BackoffRate": 1}]
        return task

    def _input_paths(self, node: Any) -> str:
        if node.name == START:
            return f"States.Format('{{}}/{PARAMETERS_INPUT}', $.run_id)"
        closed = self.closes.get(node.name)
        if node.type == JOIN and closed is not None and closed.type == FOREACH:
            (last,) = node.in_funcs
            return f"States.Format('{{}}/{last}/sfn{{}}-*', $.run_id, $.stack)"
        parents = node.in_funcs
        if len(parents) == 1 and self.nodes[parents[0]].type == FOREACH:
            return f"States.Format('{{}}/{parents[0]}/sfn{{}}', $.run_id, $.parent_stack)"
        template = ",".join(f"{{}}/{parent}/sfn{{}}" for parent in parents)
        return f"States.Format('{template}'{', $.run_id, $.stack' * len(parents)})"

    # -- limits ------------------------------------------------------------------------------

    @staticmethod
    def _name(base: str, scope: _Scope) -> str:
        return base + scope.suffix

    @staticmethod
    def _check_name(name: str, step: str) -> None:
        if len(name) > limits.MAX_STATE_NAME:
            room = limits.MAX_STATE_NAME - (len(name) - len(step))
            raise CompileError(
                f"step '{step}' makes the state name '{name}' ({len(name)} characters), longer than the "
                f"{limits.MAX_STATE_NAME} Step Functions allows; rename the step to at most {room} characters")

    def _check_submission(self, step: str, submission: dict, depth: int) -> None:
        values = limits.worst_case_values(depth)
        longest = limits.worst_case(submission, values)
        size = limits.json_size(longest["Parameters"])
        if size > limits.BATCH_PARAMETERS_BUDGET:
            raise CompileError(
                f"step '{step}' can submit Batch parameters of {size} bytes, more than the "
                f"{limits.BATCH_PARAMETERS_BUDGET} allowed under Batch's {limits.BATCH_OVERRIDE_LIMIT}-byte limit; "
                "shorten the step names it reads from")
        if limits.json_size(longest) > limits.MAX_PAYLOAD_BYTES:
            raise CompileError(f"step '{step}' can submit more than the {limits.MAX_PAYLOAD_BYTES} bytes a state "
                               "may pass; shorten the step names it reads from")
        job_name = longest["JobName"]
        if len(job_name) > limits.MAX_JOB_NAME:
            room = len(step) - (len(job_name) - limits.MAX_JOB_NAME)
            raise CompileError(
                f"step '{step}' can make Batch job names of {len(job_name)} characters (with an execution name of "
                f"{limits.MAX_EXECUTION_NAME} and {limits.MAX_INDEX_DIGITS}-digit foreach indices), more than "
                f"Batch's {limits.MAX_JOB_NAME}; rename the step to at most {max(room, 1)} characters")


def compile_state_machine(graph: Any, flow_name: str, jobs: Mapping[str, StepJob], options: CompileOptions) -> dict:
    """The Amazon States Language definition (a dict, ready for ``json.dumps``) that runs the flow
    whose `FlowGraph` is ``graph``: ``jobs`` holds each step's prepared Batch job."""
    return _Compiler(graph, flow_name, jobs, options).compile()


def definition_json(definition: dict) -> str:
    """The definition as Step Functions receives it (and as the golden files hold it)."""
    return json.dumps(definition, indent=2) + "\n"
