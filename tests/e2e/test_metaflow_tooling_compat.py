"""What Metaflow's own tooling and test suite expect of a flow's command line, its tasks and the
Client API: ``dump --private``, ``tag list --flat``, the top-level options Metaflow passes,
``METAFLOW_BRANCH``, output kept across a segfault, class constants as artifacts, config
expressions as parameter defaults, ``current.task``/``current.run``, and the client's tag
filters, neighbouring steps and metadata fields."""

from __future__ import annotations

import pickle
import textwrap

import pytest
from flow_core import Run, namespace
from flow_core.testing import run_id_of

FLOW = textwrap.dedent('''
    from flow_core import FlowSpec, Parameter, config_expr, Config, current, project, step


    def who_default(ctx):
        return "from " + (current.project_name or "nowhere")


    @project(name="toolbox")
    class ToolFlow(FlowSpec):
        cfg = Config("cfg", default_value={"size": 3})
        size = Parameter("size", default=config_expr("cfg").size, type=int)
        who = Parameter("who", default=who_default)
        LIMIT = 10

        @step
        def start(self):
            self.items = [1, 2]
            self.me = current.task
            self.whole = current.run
            self.user_tags = current.tags
            self.next(self.work, foreach="items")

        @step
        def work(self):
            self.doubled = self.input * 2 * self.size
            self.next(self.join)

        @step
        def join(self, inputs):
            self.total = sum(i.doubled for i in inputs)
            self.user_tags = inputs[0].user_tags
            self.next(self.end)

        @step
        def end(self):
            print("branch", current.branch_name)
            self.user_tags.update({"later"})


    if __name__ == "__main__":
        ToolFlow()
''')

METAFLOW_TOP_OPTIONS = ("--metadata=local", "--datastore=local", "--environment=local",
                        "--event-logger=nullSidecarLogger", "--monitor=nullSidecarMonitor", "--no-pylint")


@pytest.fixture
def tool_run(python_flow, tmp_path):
    path = tmp_path / "tool_flow.py"
    path.write_text(FLOW)
    run_id_file = tmp_path / "run-id"
    result = python_flow(path, *METAFLOW_TOP_OPTIONS, "--quiet", "run", "--tag", "blue",
                         "--run-id-file", str(run_id_file), env={"METAFLOW_BRANCH": "feature"})
    assert result.returncode == 0, result.stderr
    namespace(None)
    yield path, Run(f"ToolFlow/{run_id_file.read_text()}")


def test_metaflows_top_level_options_and_metaflow_branch_are_taken(tool_run):
    _, run = tool_run
    assert "branch test.feature" in run["end"].task.stdout
    assert "project_branch:test.feature" in run.system_tags
    # A parameter's default function sees the run's @project, as in Metaflow.
    assert run.data.who == "from toolbox"


def test_an_environment_nobody_provides_is_refused_in_one_sentence(python_flow, tool_run):
    path, _ = tool_run
    refused = python_flow(path, "--environment=fast-bakery", "run")
    assert refused.returncode != 0
    last = refused.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: environment 'fast-bakery' is not installed (installed: conda, local, pypi)"), last
    assert "Traceback" not in refused.stderr


def test_a_config_expression_default_is_evaluated_before_the_type_applies(tool_run):
    _, run = tool_run
    assert run.data.size == 3
    assert run.data.total == (1 + 2) * 2 * 3


def test_class_constants_are_artifacts_of_every_task(tool_run):
    _, run = tool_run
    for step in run:
        for task in step:
            assert task["LIMIT"].data == 10, task.pathspec


def test_dump_private_adds_private_artifacts_to_the_file(python_flow, tool_run, tmp_path):
    path, run = tool_run
    public, private = tmp_path / "public.pkl", tmp_path / "private.pkl"
    for target, extra in ((public, ()), (private, ("--private",))):
        dumped = python_flow(path, "dump", "--max-value-size", "100000000000", *extra, "--file", str(target),
                             f"{run.id}/work")
        assert dumped.returncode == 0, dumped.stderr
    public_names = {name for values in pickle.loads(public.read_bytes()).values() for name in values}
    private_names = {name for values in pickle.loads(private.read_bytes()).values() for name in values}
    assert "doubled" in public_names and not any(name.startswith("_") for name in public_names)
    assert any(name.startswith("_") for name in private_names) and public_names < private_names
    only = python_flow(path, "dump", "--private", "--include", "doubled", "--file", str(public), f"{run.id}/work")
    assert only.returncode == 0, only.stderr
    assert all(set(values) == {"doubled"} for values in pickle.loads(public.read_bytes()).values())


def test_tag_list_flat_prints_one_tag_a_line_after_a_heading(python_flow, tool_run):
    path, run = tool_run
    user = python_flow(path, "tag", "list", "--flat", "--hide-system-tags", "--run-id", run.id)
    assert user.returncode == 0, user.stderr
    assert user.stderr.splitlines()[1:] == ["blue"]
    every = python_flow(path, "tag", "list", "--flat", "--run-id", run.id)
    assert set(every.stderr.splitlines()[1:]) == set(run.tags)
    replaced = python_flow(path, "tag", "replace", "--run-id", run.id, "--remove", "blue", "--add", "green",
                           "--add", "red")
    assert replaced.returncode == 0, replaced.stderr
    assert Run(run.pathspec).user_tags == frozenset({"green", "red"})


def test_current_task_and_run_are_client_objects_kept_as_artifacts(tool_run):
    _, run = tool_run
    start = run["start"].task
    assert start.data.me.pathspec == start.pathspec
    assert start.data.whole.pathspec == run.pathspec
    # current.tags is the run's user tags as a set, as in Metaflow: a step may keep and grow it.
    assert run["end"].task.data.user_tags == {"blue", "later"}


def test_client_tag_filters_neighbouring_steps_and_metadata_fields(tool_run):
    _, run = tool_run
    assert run.parent.tags == frozenset()
    assert {s.id for s in run.steps("blue")} == {"start", "work", "join", "end"}
    assert list(run.steps("blue", "not-a-tag")) == []
    work = run["work"]
    assert len(list(work.tasks("blue"))) == 2 and list(work.tasks("not-a-tag")) == []
    assert [s.id for s in work.parent_steps] == ["start"] and [s.id for s in work.child_steps] == ["join"]
    assert list(run["start"].parent_steps) == [] and list(run["end"].child_steps) == []
    assert work.control_task is None
    task = run["end"].task
    assert all(next(iter(d.tags)) in run.tags for d in task)
    attempts = [m.value for m in task.metadata if m.type == "attempt"]
    assert attempts == ["0"] and all(m.name == m.field for m in task.metadata)
    with pytest.raises(Exception, match="not both empty"):
        run.replace_tags([], [])
    run.add_tag(["x1", "x2"])  # Metaflow's older spelling: a list to the one-tag methods
    assert {"x1", "x2"} <= Run(run.pathspec).user_tags
    run.replace_tag(["x1"], ["x3"])
    run.remove_tag(["x2", "x3"])
    assert Run(run.pathspec).user_tags == frozenset({"blue"})


def test_a_segfaulting_task_keeps_what_it_printed_unflushed(python_flow, tmp_path):
    path = tmp_path / "crash_flow.py"
    path.write_text(textwrap.dedent('''
        from flow_core import FlowSpec, step


        class CrashFlow(FlowSpec):
            @step
            def start(self):
                self.next(self.end)

            @step
            def end(self):
                import ctypes
                print("Crash and burn!")
                ctypes.string_at(0)


        if __name__ == "__main__":
            CrashFlow()
    '''))
    result = python_flow(path, "run")
    assert result.returncode != 0
    namespace(None)
    task = Run(f"CrashFlow/{run_id_of(result.stdout + result.stderr)}")["end"].task
    assert task.stdout == "Crash and burn!\n"
    assert task.stderr.endswith("Task failed with a segmentation fault.\n")


def test_a_cloned_task_carries_its_origins_metadata(python_flow, tmp_path):
    path = tmp_path / "flaky_flow.py"
    path.write_text(textwrap.dedent('''
        import os
        from flow_core import FlowSpec, step


        class FlakyOnceFlow(FlowSpec):
            @step
            def start(self):
                self.next(self.end)

            @step
            def end(self):
                if not os.environ.get("FIXED"):
                    raise ValueError("not yet")


        if __name__ == "__main__":
            FlakyOnceFlow()
    '''))
    first = python_flow(path, "run")
    assert first.returncode != 0
    resumed = python_flow(path, "resume", env={"FIXED": "1"})
    assert resumed.returncode == 0, resumed.stderr
    namespace(None)
    run = Run(f"FlakyOnceFlow/{run_id_of(resumed.stdout + resumed.stderr)}")
    origin = run["start"].task
    fields = origin.metadata_dict
    assert {"origin-task-id", "origin-run-id", "python_version", "hostname"} <= set(fields)
    assert [m.value for m in origin.metadata if m.type == "attempt"] == ["0"]
    assert "origin-task-id" not in run["end"].task.metadata_dict


def test_a_parallel_steps_control_task_is_found_by_the_client(python_flow, tmp_path):
    path = tmp_path / "gang_flow.py"
    path.write_text(textwrap.dedent('''
        from flow_core import FlowSpec, current, parallel, step


        class SmallGangFlow(FlowSpec):
            @step
            def start(self):
                self.next(self.train, num_parallel=2)

            @parallel
            @step
            def train(self):
                self.node = current.parallel.node_index
                self.next(self.join)

            @step
            def join(self, inputs):
                self.next(self.end)

            @step
            def end(self):
                pass


        if __name__ == "__main__":
            SmallGangFlow()
    '''))
    result = python_flow(path, "run")
    assert result.returncode == 0, result.stderr
    namespace(None)
    train = Run(f"SmallGangFlow/{run_id_of(result.stdout + result.stderr)}")["train"]
    (control,) = train.control_tasks()
    assert control.data.node == 0 and train.control_task == control
    assert list(train.control_tasks("not-a-tag")) == []


def test_configs_come_from_metaflows_environment_variables_and_reach_default_functions(python_flow, tmp_path):
    path = tmp_path / "config_env_flow.py"
    path.write_text(textwrap.dedent('''
        from flow_core import FlowSpec, Config, Parameter, config_expr, step


        def one_more(ctx):
            return ctx.configs.limits.top + 1


        class ConfigEnvFlow(FlowSpec):
            limits = Config("limits")
            words = Config("words", required=True, parser=lambda text: {"said": text.strip()})
            top = Parameter("top", default=config_expr("limits").top, type=int)
            above = Parameter("above", default=one_more, type=int)

            @step
            def start(self):
                print("VALUES", self.top, self.above, self.words.said)
                self.next(self.end)

            @step
            def end(self):
                pass


        if __name__ == "__main__":
            ConfigEnvFlow()
    '''))
    words = tmp_path / "words.txt"
    words.write_text("hello\n")
    result = python_flow(path, "run", env={"METAFLOW_FLOW_CONFIG_VALUE": '{"limits": {"top": 7}}',
                                           "METAFLOW_FLOW_CONFIG": f'{{"words": "{words}"}}'})
    assert result.returncode == 0, result.stderr
    assert "VALUES 7 8 hello" in result.stdout
