"""Running one task attempt: what ``flow step`` does, on any compute.

The order of writes is what keeps the datastore consistent after a crash: artifacts and
logs first, then the attempt's index (the commit point in the datastore), then the
metadata record. A task killed before its index is written left only unreferenced,
content-addressed blobs, which a re-run reuses.
"""

from __future__ import annotations

import os
import socket
import sys
import time
import traceback
from contextlib import nullcontext
from typing import Any, Iterator

import attrs

from flow_core.backends.records import ArtifactRecord
from flow_core.backends.selection import Backends
from flow_core.datastore.card_store import TaskCardWriter
from flow_core.datastore.task_store import FlowDataStore, TaskDataStore
from flow_core.engine.heartbeat import RunHeartbeat
from flow_core.engine.input_paths import has_step_wildcard, resolve_step_wildcards, unpack_input_paths
from flow_core.engine.live_log_saver import CapturedOutput
from flow_core.engine.metadata_path import task_metadata
from flow_core.engine.relayed_output import RelayedOutput
from flow_core.engine.run_start import (
    CODE_PACKAGE_VARIABLE,
    INTERPRETER_VARIABLE,
    ORIGIN_RUN_VARIABLE,
    PRODUCTION_TOKEN_VARIABLE,
)
from flow_core.errors import FlowError
from flow_core.model.current import current
from flow_core.model.decorators import StepDecorator, step_decorators
from flow_core.model.flowspec import ArtifactSource, FlowSpec, Inputs, InvalidTransition, Transition, foreach_input_name
from flow_core.model.foreach import Stack, child_stack, stack_from_info, stack_to_info
from flow_core.model.graph import END, FOREACH, JOIN, SWITCH, FlowGraph
from flow_core.model.loader import load_flow_class
from flow_core.model.parallel import task_type_fields
from flow_core.model.parameters import class_constants, flow_parameters
from flow_core.model.task_context import TaskContext

#: flow_core itself: frames under it are Flow's, not the user's.
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@attrs.frozen
class TaskArguments:
    """The arguments of the task command line."""

    flow_file: str
    step_name: str
    run_id: str
    task_id: str
    flow_name: str | None = None
    input_paths: tuple[str, ...] = ()
    split_index: int | None = None
    retry_count: int = 0
    max_user_code_retries: int = 0
    tags: tuple[str, ...] = ()
    decospecs: tuple[str, ...] = ()


class StoredArtifacts(ArtifactSource):
    """Artifacts of a stored task attempt, loaded only when touched (optionally a subset)."""

    def __init__(self, store: TaskDataStore, only: set[str] | None = None):
        self.store = store
        self.only = only

    def names(self) -> Iterator[str]:
        return (n for n in self.store.names() if self.only is None or n in self.only)

    def load(self, name: str) -> Any:
        return self.store.load(name)

    def record(self, name: str) -> ArtifactRecord:
        return self.store.record(name)

    def key(self, name: str) -> str:
        return self.record(name).key


@attrs.frozen
class Parent:
    step_name: str
    store: TaskDataStore

    @property
    def stack(self) -> Stack:
        return stack_from_info(self.store.info.foreach_stack)


class TaskRunner:
    """One attempt of one task, with its records going to ``metadata`` (the backend itself,
    or a relay of `flow_core.engine.metadata_path`). ``owns_run`` says nobody else may be
    alive to keep the run's heartbeat and final status, so the task does."""

    def __init__(self, args: TaskArguments, backends: Backends, metadata: Any, owns_run: bool = False,
                 flow_cls: type[FlowSpec] | None = None, graph: FlowGraph | None = None,
                 decorators: list[StepDecorator] | None = None,
                 opened_parents: dict[str, TaskDataStore] | None = None, output_channel: int | None = None):
        """``decorators`` and ``opened_parents`` (by input path) are what the local fork
        server made ready once for the tasks forked from it (`flow_core.engine.task_prelude`);
        anything missing is made here. With ``output_channel`` (a forked task's channel to the
        runtime) the runtime keeps the task's output; without, the task captures its own."""
        self.args = args
        self.backends = backends
        self.settings = backends.settings
        self.owns_run = owns_run
        self.flow_cls = flow_cls or load_flow_class(args.flow_file, args.flow_name)
        self.flow_name = self.flow_cls.__name__
        self.graph = graph or FlowGraph(self.flow_cls, str(args.flow_file))
        if args.step_name not in self.graph:
            raise FlowError(f"{self.flow_name} has no step named '{args.step_name}'")
        self.node = self.graph[args.step_name]
        self.decorators: list[StepDecorator] = decorators if decorators is not None else step_decorators(
            self.flow_cls, args.step_name, args.decospecs, backends.step_decorators)
        self.metadata = metadata
        self.datastore = FlowDataStore(backends.storage)
        self._opened_parents = opened_parents or {}
        self._output_channel = output_channel

    def _open_parents(self, paths: tuple[str, ...]) -> list[Parent]:
        resolved = has_step_wildcard(paths)
        if resolved:
            paths = resolve_step_wildcards(self.backends.metadata, self.flow_name, paths)
        if all(path in self._opened_parents for path in paths):
            stores = [self._opened_parents[path] for path in paths]
        else:
            stores = self.datastore.open_tasks(self.flow_name, paths)
        parents = [Parent(path.split("/")[1], store) for path, store in zip(paths, stores)]
        if resolved and self.node.type == JOIN and parents[0].stack:
            parents.sort(key=lambda parent: parent.stack[-1].index)  # a foreach join takes them in order
        return parents

    # -- the attempt ------------------------------------------------------------------------

    def run(self) -> int:
        """Run the attempt; return the process exit status (0 on success)."""
        args = self.args
        parents = self._open_parents(unpack_input_paths(self.datastore.cas, args.input_paths))
        if not args.task_id.isdigit():  # an orchestrator's own id: the task registers itself
            self.metadata.register_tasks(self.flow_name, args.run_id, args.step_name, [args.task_id])
        self.metadata.start_attempt(
            self.flow_name, args.run_id, args.step_name, args.task_id, args.retry_count,
            {"hostname": socket.gethostname(), "pid": str(os.getpid()),
             "python-version": sys.version.split()[0], "python_version": sys.version.split()[0],
             "attempt": str(args.retry_count),
             **({"origin-run-id": os.environ[ORIGIN_RUN_VARIABLE]} if os.environ.get(ORIGIN_RUN_VARIABLE) else {}),
             **({"code-package": os.environ[CODE_PACKAGE_VARIABLE]} if os.environ.get(CODE_PACKAGE_VARIABLE) else {}),
             **({"environment": os.environ[INTERPRETER_VARIABLE]} if os.environ.get(INTERPRETER_VARIABLE) else {}),
             **({"foreach-index": str(args.split_index)} if args.split_index is not None else {}),
             **task_type_fields(os.environ, args.task_id),
             **{k: v for decorator in self.decorators for k, v in decorator.task_metadata().items()}},
        )
        store = self.datastore.task(self.flow_name, args.run_id, args.step_name, args.task_id, args.retry_count)
        flow = self.flow_cls(use_cli=False)
        pathspec = f"{self.flow_name}/{args.run_id}/{args.step_name}/{args.task_id}"
        ctx = TaskContext(flow, args.step_name, args.retry_count, args.max_user_code_retries, self.graph,
                          pathspec=pathspec,
                          card_writer=TaskCardWriter(self.backends.storage, pathspec, args.retry_count))
        started = time.time()
        succeeded = False
        heartbeat = RunHeartbeat(self.metadata, self.flow_name, args.run_id) if self.owns_run else nullcontext()
        output = (RelayedOutput(self._output_channel, self.backends.storage, pathspec, args.retry_count)
                  if self._output_channel is not None
                  else CapturedOutput(self.backends.storage, pathspec, args.retry_count, self.settings))
        with heartbeat, output as logs:
            try:
                extra = self._prepare(flow, parents)
                self._set_current()
                self._run_step_code(flow, parents, ctx)
                self._save(flow, parents, store, extra)
                succeeded = True
            except Exception as exc:  # the user's code failed: report it as the task's own output
                store.info.exception = f"{type(exc).__name__}: {exc}"
                store.info.exception_type = f"{type(exc).__module__}.{type(exc).__qualname__}"
                if isinstance(exc, FlowError):
                    print(f"Error: {exc}", file=sys.stderr)
                else:
                    print_user_traceback(exc)
            finally:
                try:
                    self._finish_decorators(ctx, store, succeeded)
                finally:
                    current._clear()  # the process may go on (a test, an embedding) outside the task
        store.save_log("stdout", logs.stdout)
        store.save_log("stderr", logs.stderr)
        store.info.success = succeeded
        store.info.duration = time.time() - started
        store.commit()
        logs.remove_live()  # the index holds the final logs now
        self.metadata.finish_attempt(
            self.flow_name, args.run_id, args.step_name, args.task_id, args.retry_count, succeeded,
            list(store.artifact_records().values()) if succeeded else [],
        )
        if self.owns_run:
            self._record_run_outcome(succeeded)
        return 0 if succeeded else 1

    def _finish_decorators(self, ctx: TaskContext, store: TaskDataStore, succeeded: bool) -> None:
        """Each decorator's `task_finished` (``@card`` renders here, once the artifacts are
        stored); one that raises is reported on the task's stderr and changes nothing."""
        if succeeded:
            ctx.stored_artifacts = {r.name: (r.type, r.size) for r in store.artifact_records().values()}
        for decorator in self.decorators:
            try:
                decorator.task_finished(ctx, succeeded)
            except Exception as exc:
                print(f"@{decorator.name} failed after the step: {type(exc).__name__}: {exc}", file=sys.stderr)

    def _record_run_outcome(self, succeeded: bool) -> None:
        """With no runtime alive, the run ends with its `end` task, or with a task that failed
        its last attempt."""
        args = self.args
        if succeeded and args.step_name == END:
            self.metadata.finish_run(self.flow_name, args.run_id, succeeded=True)
        elif not succeeded and args.retry_count >= args.max_user_code_retries:
            self.metadata.finish_run(self.flow_name, args.run_id, succeeded=False)

    def _set_current(self) -> None:
        args = self.args
        token = os.environ.get(PRODUCTION_TOKEN_VARIABLE)
        current._set(
            flow_name=self.flow_name, run_id=args.run_id, step_name=args.step_name, task_id=args.task_id,
            retry_count=args.retry_count, username=self.settings.user,
            origin_run_id=os.environ.get(ORIGIN_RUN_VARIABLE) or None,
            namespace=f"production:{token}" if token else f"user:{self.settings.user}",
            is_production=bool(token), is_running_flow=True, tags=set(args.tags),  # a set, as Metaflow's
            parameter_names=tuple(flow_parameters(self.flow_cls)),
        )

    def _prepare(self, flow: FlowSpec, parents: list[Parent]) -> dict[str, Any]:
        """Give the flow object its inputs; return hidden artifacts this task must store."""
        node = self.node
        flow._current_step = node.name
        flow._in_join = node.type == JOIN
        if not parents:
            return {}
        first = parents[0]
        parent_node = self.graph.nodes.get(first.step_name)
        stack = first.stack
        extra: dict[str, Any] = {}
        if parent_node is not None:
            num_splits = first.store.info.foreach_num_splits
            stack = child_stack(stack, parent_node, node, self.args.split_index, num_splits)
        flow._foreach_stack = stack
        if parent_node is not None and parent_node.type == FOREACH:
            if parent_node.parallel_foreach:  # a gang's item is its node index, as in Metaflow
                value = self.args.split_index
            else:
                value = first.store.load(parent_node.foreach_param)[self.args.split_index]
            extra[foreach_input_name(len(stack) - 1)] = value
            flow.__dict__[foreach_input_name(len(stack) - 1)] = value
        if node.type == JOIN:
            # A join starts from nothing but the parameters and the enclosing foreach items.
            keep = (set(flow_parameters(self.flow_cls)) | set(class_constants(self.flow_cls))
                    | {foreach_input_name(d) for d in range(len(stack))})
            flow._artifact_source = StoredArtifacts(first.store, keep)
        else:
            flow._artifact_source = StoredArtifacts(first.store)
        return extra

    def _run_step_code(self, flow: FlowSpec, parents: list[Parent], ctx: TaskContext) -> None:
        function = getattr(flow, self.args.step_name)
        if self.node.type == JOIN:
            views = []
            for parent in parents:
                view = self.flow_cls(use_cli=False)
                view._artifact_source = StoredArtifacts(parent.store)
                view._foreach_stack = parent.stack
                views.append(view)
            inputs = Inputs(views, [p.step_name for p in parents])

            def call() -> None:
                function(inputs)
        else:
            call = function
        for decorator in self.decorators:
            decorator.task_pre_step(ctx)
        for decorator in self.decorators:
            call = decorator.task_decorate(call, ctx)
        try:
            call()
            self._check_transition(flow._transition)
        except Exception as exc:
            if not any(decorator.task_exception(exc, ctx) for decorator in self.decorators):
                raise
            flow._transition = self._expected_transition(flow)
            return
        for decorator in self.decorators:
            decorator.task_post_step(ctx)

    def _expected_transition(self, flow: FlowSpec | None = None) -> Transition | None:
        """The transition the graph says this step makes; for a switch after a caught
        exception (``flow`` given), the case its condition picks, as the step would have."""
        node = self.node
        if node.name == END:
            return None
        if node.type == SWITCH:
            if flow is None:
                return None
            flow._transition = None
            flow.next({key: getattr(flow, target) for key, target in node.switch_cases.items()},
                      condition=node.condition)
            return flow._transition
        return Transition(tuple(node.out_funcs), node.foreach_param if node.type == FOREACH else None)

    def _check_transition(self, transition: Transition | None) -> None:
        if self.node.type == SWITCH:
            self._check_switch(transition)
            return
        expected = self._expected_transition()
        if transition == expected:
            return
        if expected is None:
            raise InvalidTransition("the 'end' step must not call self.next")
        if transition is None:
            raise InvalidTransition(f"step '{self.node.name}' returned without calling self.next")
        raise InvalidTransition(
            f"step '{self.node.name}' called self.next({', '.join(transition.targets)}) but its last line "
            f"says self.next({', '.join(expected.targets)}); call self.next once, as the last statement"
        )

    def _check_switch(self, transition: Transition | None) -> None:
        node = self.node
        if transition is None:
            raise InvalidTransition(f"step '{node.name}' returned without calling self.next")
        if transition.condition != node.condition or transition.cases != frozenset(node.out_funcs):
            raise InvalidTransition(
                f"step '{node.name}' called self.next differently from its last line, which switches on "
                f"'{node.condition}' between {', '.join(node.out_funcs)}; call self.next once, as the last statement"
            )

    def _save(self, flow: FlowSpec, parents: list[Parent], store: TaskDataStore, extra: dict[str, Any]) -> None:
        values = {**flow._artifacts_set(), **extra}
        inherited: dict[str, ArtifactRecord] = {}  # what each name held when this task began
        source = flow._artifact_source
        if isinstance(source, StoredArtifacts):
            inherited.update({name: source.record(name) for name in source.names()})
        for name, (merged_source, _key) in flow._merged.items():
            inherited[name] = merged_source.record(name)
        store.add_artifact_refs({name: record for name, record in inherited.items() if name not in values})
        store.save_artifacts(values, loaded_from={name: inherited[name] for name in values if name in inherited})
        store.info.foreach_stack = stack_to_info(flow._foreach_stack)
        if flow._transition is not None:
            store.info.transition = list(flow._transition.targets)
        if self.node.parallel_foreach:
            store.info.foreach_num_splits = self._gang_size(flow._transition)
        elif self.node.type == FOREACH:
            store.info.foreach_num_splits = self._num_splits(flow)

    def _gang_size(self, transition: Transition | None) -> int:
        """How many tasks the @parallel gang this step starts has: what it passed as
        num_parallel (or, when @catch caught its failure, the literal its last line gives)."""
        size = transition.num_parallel if transition is not None else None
        size = size if size is not None else self.node.num_parallel
        if size is None:
            raise FlowError(f"{self.graph.file}:{self.node.next_line}: step '{self.node.name}' failed before "
                            "its self.next, and its num_parallel is not a number the graph can tell")
        return size

    def _num_splits(self, flow: FlowSpec) -> int:
        var = self.node.foreach_param
        try:
            items = getattr(flow, var)
        except AttributeError:
            raise FlowError(
                f"{self.graph.file}:{self.node.next_line}: step '{self.node.name}' does a foreach over "
                f"'{var}', but never sets self.{var}"
            ) from None
        try:
            count = len(items)
        except TypeError:
            raise FlowError(
                f"{self.graph.file}:{self.node.next_line}: the foreach over '{var}' in step '{self.node.name}' "
                f"needs a list or another sized sequence, not {type(items).__name__}"
            ) from None
        if count == 0:  # its join would never run: refused, as Metaflow refuses it
            raise FlowError(f"{self.graph.file}:{self.node.next_line}: the foreach over '{var}' in step "
                            f"'{self.node.name}' produced zero splits; check self.{var}")
        return count


def run_task(args: TaskArguments, backends: Backends) -> int:
    """``flow step``: a task in a process of its own, on whichever route its environment names."""
    metadata, owns_run = task_metadata(backends, os.environ)
    return TaskRunner(args, backends, metadata, owns_run).run()


def print_user_traceback(exc: BaseException) -> None:
    """Print the traceback from the first frame of the user's code: Flow's own frames above
    it (the task runner, decorators) are noise to the person debugging their step."""
    tb = exc.__traceback__
    while tb is not None and os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(_PACKAGE_DIR + os.sep):
        tb = tb.tb_next
    traceback.print_exception(type(exc), exc, tb or exc.__traceback__)
