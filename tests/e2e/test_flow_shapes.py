"""Branches, foreach (nested), joins and merge_artifacts, as a Metaflow user writes them."""

from __future__ import annotations

import pytest
from flow_core.testing import last_error, run_id_of

SHAPES = """
    from flow_core import FlowSpec, step, current

    class Shapes(FlowSpec):
        @step
        def start(self):
            self.items = [1, 2]
            self.shared = "same everywhere"
            self.next(self.left, self.right)

        @step
        def left(self):
            self.side = "left"
            self.next(self.join)

        @step
        def right(self):
            self.side = "right"
            self.next(self.outer, foreach="items")

        @step
        def outer(self):
            self.letters = ["x", "y"]
            self.outer_item = self.input
            self.next(self.inner, foreach="letters")

        @step
        def inner(self):
            self.pair = (self.outer_item, self.input, self.index)
            print("pair", self.pair)
            self.next(self.inner_join)

        @step
        def inner_join(self, inputs):
            self.pairs = [i.pair for i in inputs]
            self.first = inputs[0].pair
            self.merge_artifacts(inputs, exclude=["pair"])
            self.next(self.outer_join)

        @step
        def outer_join(self, inputs):
            self.all_pairs = [p for i in inputs for p in i.pairs]
            self.merge_artifacts(inputs, exclude=["pairs", "outer_item", "first"])
            self.next(self.join)

        @step
        def join(self, inputs):
            self.sides = [inputs.left.side, inputs.outer_join.side]
            self.all_pairs = inputs.outer_join.all_pairs
            self.merge_artifacts(inputs, include=["shared"])
            self.next(self.end)

        @step
        def end(self):
            print("pairs", self.all_pairs)
"""


@pytest.mark.parametrize("compute", ["local", "subprocess"])
def test_branches_nested_foreach_and_joins_produce_the_expected_artifacts(write_flow, flow_cli, records, compute):
    result = flow_cli("run", str(write_flow("shapes.py", SHAPES)), "--compute", compute)
    assert result.returncode == 0, result.stderr
    run_id = run_id_of(result.stdout)
    pairs = [(1, "x", 0), (1, "y", 1), (2, "x", 0), (2, "y", 1)]
    assert records.artifact("Shapes", run_id, "end", "all_pairs") == pairs  # foreach order is kept
    assert records.artifact("Shapes", run_id, "end", "sides") == ["left", "right"]
    assert records.artifact("Shapes", run_id, "end", "shared") == "same everywhere"
    assert sorted(records.artifacts("Shapes", run_id, "inner", "pair")) == pairs
    assert sorted(records.artifacts("Shapes", run_id, "inner_join", "first")) == [(1, "x", 0), (2, "x", 0)]
    # inner_join took `letters` (equal in every input) but not the excluded `pair`
    assert records.artifacts("Shapes", run_id, "inner_join", "letters") == [["x", "y"], ["x", "y"]]
    assert "pair" not in records.task_store("Shapes", run_id, "join").names()
    for pair in pairs:
        assert f"pair {pair}" in result.stdout


def test_python_file_runs_the_same_graph(write_flow, python_flow, records):
    path = write_flow("shapes.py", SHAPES + '\n    if __name__ == "__main__":\n        Shapes()\n')
    result = python_flow(path, "run")
    assert result.returncode == 0, result.stderr
    run_id = run_id_of(result.stdout)
    assert records.artifact("Shapes", run_id, "end", "sides") == ["left", "right"]


CONFLICT = """
    from flow_core import FlowSpec, step

    class Conflict(FlowSpec):
        @step
        def start(self):
            self.next(self.a, self.b)

        @step
        def a(self):
            self.model = "linear"
            self.next(self.join)

        @step
        def b(self):
            self.model = "forest"
            self.next(self.join)

        @step
        def join(self, inputs):
            self.merge_artifacts(inputs)
            self.next(self.end)

        @step
        def end(self):
            pass
"""


def test_merge_conflict_names_the_artifact(write_flow, flow_cli):
    result = flow_cli("run", str(write_flow("conflict.py", CONFLICT)))
    assert result.returncode == 1
    assert "artifact 'model' has different values in different inputs" in last_error(result)
    assert "/join/" in last_error(result)


def test_foreach_over_a_missing_attribute_fails_with_file_and_line(write_flow, flow_cli):
    path = write_flow("missing.py", """
        from flow_core import FlowSpec, step

        class Missing(FlowSpec):
            @step
            def start(self):
                self.next(self.each, foreach="things")

            @step
            def each(self):
                self.next(self.join)

            @step
            def join(self, inputs):
                self.next(self.end)

            @step
            def end(self):
                pass
    """)
    result = flow_cli("run", str(path))
    assert result.returncode == 1
    assert f"{path}:6: step 'start' does a foreach over 'things', but never sets self.things" in last_error(result)


def test_max_num_splits_stops_a_runaway_foreach(write_flow, flow_cli, records):
    path = write_flow("wide.py", """
        from flow_core import FlowSpec, step

        class Wide(FlowSpec):
            @step
            def start(self):
                self.items = list(range(50))
                self.next(self.each, foreach="items")

            @step
            def each(self):
                self.next(self.join)

            @step
            def join(self, inputs):
                self.next(self.end)

            @step
            def end(self):
                pass
    """)
    result = flow_cli("run", str(path), "--max-num-splits", "10")
    assert result.returncode == 1
    assert "asked for a foreach of 50 items, more than --max-num-splits 10" in last_error(result)
    (run,) = records.runs("Wide")
    assert records.metadata.list_tasks("Wide", run.run_id, "each") == []


def test_show_prints_the_graph_and_check_rejects_a_bad_one(write_flow, flow_cli):
    shown = flow_cli("show", str(write_flow("shapes.py", SHAPES)))
    assert shown.returncode == 0
    assert "Step right" in shown.stdout and "foreach" in shown.stdout
    bad = write_flow("bad.py", """
        from flow_core import FlowSpec, step

        class Bad(FlowSpec):
            @step
            def start(self):
                self.next(self.a, self.b)

            @step
            def a(self):
                self.next(self.end)

            @step
            def b(self):
                self.next(self.end)

            @step
            def end(self):
                pass
    """)
    checked = flow_cli("check", str(bad))
    assert checked.returncode != 0
    assert checked.stderr.strip().splitlines() == [
        f"Error: {bad}:17: step 'end' is reached from 'a', 'b' and must join them: "
        "define it as `def end(self, inputs):`"]
