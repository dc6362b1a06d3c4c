"""Switches (conditional branches), as Metaflow 2.19 defines them: only the chosen case runs,
the cases meet again without a join, a case may loop back, and resume maps each turn of a loop."""

from __future__ import annotations

import pytest
from flow_core import Run, namespace
from flow_core.testing import last_error, run_id_of


@pytest.fixture
def client_run(flow_env):
    """``client_run(flow, run_id)``: the run through the Client API, in the global namespace."""
    namespace(None)
    yield lambda flow_name, run_id: Run(f"{flow_name}/{run_id}")
    namespace(None)


def _steps(run) -> set[str]:
    return {step.id for step in run}


BASIC = """
    from flow_core import FlowSpec, Parameter, step

    class SwitchFlow(FlowSpec):
        choice = Parameter("choice", default="a")

        @step
        def start(self):
            self.picked = self.choice
            self.next(self.switch_step)

        @step
        def switch_step(self):
            self.next({"a": self.path_a, "b": self.path_b}, condition="picked")

        @step
        def path_a(self):
            self.result = "A"
            print("took path a")
            self.next(self.end)

        @step
        def path_b(self):
            self.result = "B"
            print("took path b")
            self.next(self.end)

        @step
        def end(self):
            print("result", self.result)

    if __name__ == "__main__":
        SwitchFlow()
"""


@pytest.mark.parametrize("choice, taken, skipped", [("a", "path_a", "path_b"), ("b", "path_b", "path_a")])
def test_only_the_chosen_case_runs_and_the_cases_meet_without_a_join(write_flow, python_flow, client_run,
                                                                     choice, taken, skipped):
    path = write_flow("switch_flow.py", BASIC)
    result = python_flow(path, "run", "--choice", choice)
    assert result.returncode == 0, result.stderr
    assert f"took path {choice}" in result.stdout and f"result {choice.upper()}" in result.stdout
    assert f"took path {'b' if choice == 'a' else 'a'}" not in result.stdout
    run = client_run("SwitchFlow", run_id_of(result.stdout))
    assert run.successful
    assert _steps(run) == {"start", "switch_step", taken, "end"}  # the case not taken has no tasks
    assert skipped not in run
    assert run["end"].task.data.result == choice.upper()
    assert len(list(run[taken])) == 1


def test_a_condition_no_case_matches_fails_the_switch_step(write_flow, python_flow):
    path = write_flow("switch_flow.py", BASIC)
    result = python_flow(path, "run", "--choice", "z")
    assert result.returncode == 1
    assert "switch_step" in last_error(result)
    assert "self.picked is 'z', which is none of its cases ('a', 'b')" in result.stdout + result.stderr


def test_show_describes_the_switch_and_check_accepts_it(write_flow, python_flow):
    path = write_flow("switch_flow.py", BASIC)
    shown = python_flow(path, "show")
    assert shown.returncode == 0, shown.stderr
    assert "Step switch_step\n    => path_a or path_b (switch on 'picked': 'a' -> path_a, 'b' -> path_b)" \
        in shown.stdout
    checked = python_flow(path, "check")
    assert checked.returncode == 0, checked.stderr
    assert "SwitchFlow: 5 steps, the graph looks good." in checked.stdout + checked.stderr


NESTED_AND_IN_BRANCH = """
    from flow_core import FlowSpec, step

    class Shapes(FlowSpec):
        @step
        def start(self):
            self.outer = "inner"
            self.inner = "d"
            self.next(self.left, self.right)

        @step
        def left(self):
            self.data = "from_left"
            self.next(self.join)

        @step
        def right(self):
            self.next({"inner": self.switch2, "skip": self.plain}, condition="outer")

        @step
        def switch2(self):
            self.next({"c": self.c, "d": self.d}, condition="inner")

        @step
        def plain(self):
            self.data = "from_plain"
            self.next(self.join)

        @step
        def c(self):
            self.data = "from_c"
            self.next(self.join)

        @step
        def d(self):
            self.data = "from_d"
            self.next(self.join)

        @step
        def join(self, inputs):
            self.final = sorted(i.data for i in inputs)
            self.via_d = inputs.d.data
            self.next(self.end)

        @step
        def end(self):
            print("final", self.final)

    if __name__ == "__main__":
        Shapes()
"""


def test_nested_switch_inside_a_branch_joins_with_the_other_branch(write_flow, python_flow, client_run):
    path = write_flow("shapes.py", NESTED_AND_IN_BRANCH)
    result = python_flow(path, "run")
    assert result.returncode == 0, result.stderr
    assert "final ['from_d', 'from_left']" in result.stdout
    run = client_run("Shapes", run_id_of(result.stdout))
    assert _steps(run) == {"start", "left", "right", "switch2", "d", "join", "end"}
    assert run["join"].task.data.via_d == "from_d"


IN_FOREACH = """
    from flow_core import FlowSpec, step

    class ParityFlow(FlowSpec):
        @step
        def start(self):
            self.items = [1, 2, 3, 4, 5]
            self.next(self.classify, foreach="items")

        @step
        def classify(self):
            self.kind = "even" if self.input % 2 == 0 else "odd"
            self.next({"even": self.even, "odd": self.odd}, condition="kind")

        @step
        def even(self):
            self.label = f"{self.input} is even"
            self.next(self.join)

        @step
        def odd(self):
            self.label = f"{self.input} is odd"
            self.next(self.join)

        @step
        def join(self, inputs):
            self.labels = [i.label for i in inputs]
            self.next(self.end)

        @step
        def end(self):
            print(self.labels)

    if __name__ == "__main__":
        ParityFlow()
"""


def test_switch_inside_a_foreach_picks_a_case_per_item(write_flow, python_flow, client_run):
    path = write_flow("parity.py", IN_FOREACH)
    result = python_flow(path, "run")
    assert result.returncode == 0, result.stderr
    run = client_run("ParityFlow", run_id_of(result.stdout))
    assert run["join"].task.data.labels == ["1 is odd", "2 is even", "3 is odd", "4 is even", "5 is odd"]
    assert len(list(run["even"])) == 2 and len(list(run["odd"])) == 3


LOOP = """
    import os
    from flow_core import FlowSpec, step

    class LoopFlow(FlowSpec):
        @step
        def start(self):
            self.count = 0
            self.history = []
            self.next(self.loop_step)

        @step
        def loop_step(self):
            self.count += 1
            if os.environ.get("BREAK_AT") == str(self.count):
                raise RuntimeError(f"turn {self.count} is broken")
            self.next(self.check)

        @step
        def check(self):
            self.history = self.history + [self.count]
            self.status = "again" if self.count < 4 else "done"
            self.next({"again": self.loop_step, "done": self.end}, condition="status")

        @step
        def end(self):
            print("history", self.history)

    if __name__ == "__main__":
        LoopFlow()
"""


def test_recursive_switch_loops_until_its_condition_leaves(write_flow, python_flow, client_run):
    path = write_flow("loop.py", LOOP)
    result = python_flow(path, "run")
    assert result.returncode == 0, result.stderr
    assert "history [1, 2, 3, 4]" in result.stdout
    run = client_run("LoopFlow", run_id_of(result.stdout))
    # one task per turn of the loop
    assert sorted(task.data.count for task in run["loop_step"]) == [1, 2, 3, 4]
    assert sorted(task.data.status for task in run["check"]) == ["again", "again", "again", "done"]
    assert run["end"].task.data.history == [1, 2, 3, 4]


def test_resuming_a_recursive_switch_reuses_each_turn_it_finished(write_flow, flow_cli, client_run):
    path = write_flow("loop.py", LOOP)
    failed = flow_cli("run", str(path), env={"BREAK_AT": "3"})
    assert failed.returncode == 1
    assert "turn 3 is broken" in last_error(failed)
    origin = run_id_of(failed.stdout)

    resumed = flow_cli("resume", str(path))
    assert resumed.returncode == 0, resumed.stderr
    assert "history [1, 2, 3, 4]" in resumed.stdout
    run = client_run("LoopFlow", run_id_of(resumed.stdout))
    # start, two turns of loop_step and two of check were reused; turn 3 on ran again
    reused = {task.data.count: task.origin_pathspec for task in run["loop_step"]}
    assert sorted(reused) == [1, 2, 3, 4]
    assert [turn for turn, origin_path in sorted(reused.items()) if origin_path] == [1, 2]
    origin_run = client_run("LoopFlow", origin)
    origin_counts = {task.pathspec: task.data.count for task in origin_run["loop_step"] if task.successful}
    assert {turn: origin_counts[reused[turn]] for turn in (1, 2)} == {1: 1, 2: 2}  # each turn maps to its own
    assert sum("Reused" in line for line in resumed.stdout.splitlines()) == 5


LOOP_IN_FOREACH = """
    import os
    from flow_core import FlowSpec, step

    class ItemLoops(FlowSpec):
        @step
        def start(self):
            self.items = [{"id": "A", "turns": 3}, {"id": "B", "turns": 5}, {"id": "C", "turns": 2}]
            self.next(self.begin, foreach="items")

        @step
        def begin(self):
            self.item_id = self.input["id"]
            self.turns = self.input["turns"]
            self.done = 0
            self.next(self.body)

        @step
        def body(self):
            self.done += 1
            if os.environ.get("BREAK") == f"{self.item_id}{self.done}":
                raise RuntimeError(f"{self.item_id} broke at turn {self.done}")
            self.go_on = str(self.done < self.turns)
            self.next({"True": self.body, "False": self.finish}, condition="go_on")

        @step
        def finish(self):
            self.result = f"{self.item_id} after {self.done}"
            self.next(self.join)

        @step
        def join(self, inputs):
            self.results = [i.result for i in inputs]
            self.next(self.end)

        @step
        def end(self):
            print("results", self.results)

    if __name__ == "__main__":
        ItemLoops()
"""


def test_resuming_a_recursive_switch_inside_a_foreach(write_flow, flow_cli, client_run):
    path = write_flow("item_loops.py", LOOP_IN_FOREACH)
    failed = flow_cli("run", str(path), env={"BREAK": "B3"})
    assert failed.returncode == 1
    assert "B broke at turn 3" in last_error(failed)

    resumed = flow_cli("resume", str(path))
    assert resumed.returncode == 0, resumed.stderr
    run = client_run("ItemLoops", run_id_of(resumed.stdout))
    assert run["join"].task.data.results == ["A after 3", "B after 5", "C after 2"]
    body = [(task.data.item_id, task.data.done, task.origin_pathspec) for task in run["body"]]
    assert sorted((item, done) for item, done, _ in body) == [
        ("A", 1), ("A", 2), ("A", 3), ("B", 1), ("B", 2), ("B", 3), ("B", 4), ("B", 5), ("C", 1), ("C", 2)]
    # B's first two turns finished before the failure: reused; its third on ran again
    assert sorted(done for item, done, origin in body if item == "B" and origin) == [1, 2]
    exits = {task.data.item_id: task for task in run["finish"]}
    assert exits["B"].origin_pathspec is None
