"""Graph validation: every mistake is reported before anything runs, with file and line."""

from __future__ import annotations

import pytest
from flow_core.errors import GraphError
from flow_core.model.graph import FlowGraph
from flow_core.model.loader import load_flow_class

HEADER = "from flow_core import FlowSpec, step\n\n"


def graph_of(write_flow, source: str, name: str = "g.py") -> FlowGraph:
    path = write_flow(name, HEADER + source)
    return FlowGraph(load_flow_class(path), str(path))


def error_of(write_flow, source: str) -> GraphError:
    with pytest.raises(GraphError) as err:
        graph_of(write_flow, source)
    return err.value


def line_of(source: str, needle: str) -> int:
    """1-based line of ``needle`` in the written file (the header comes first)."""
    text = HEADER + source
    return text[: text.index(needle)].count("\n") + 1


LINEAR = """
class Linear(FlowSpec):
    @step
    def start(self):
        self.next(self.middle)

    @step
    def middle(self):
        self.next(self.end)

    @step
    def end(self):
        pass
"""


def test_linear_graph(write_flow):
    graph = graph_of(write_flow, LINEAR)
    assert [n.name for n in graph] == ["start", "middle", "end"]
    assert graph["start"].out_funcs == ["middle"]
    assert graph["end"].in_funcs == ["middle"]


def test_branch_and_foreach_graph(write_flow):
    graph = graph_of(write_flow, """
class Shapes(FlowSpec):
    @step
    def start(self):
        self.items = [1, 2]
        self.next(self.a, self.b)

    @step
    def a(self):
        self.next(self.join)

    @step
    def b(self):
        self.next(self.fan, foreach="items")

    @step
    def fan(self):
        self.next(self.fan_join)

    @step
    def fan_join(self, inputs):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass
""")
    assert graph["start"].type == "split" and graph["start"].matching_join == "join"
    assert graph["b"].type == "foreach" and graph["b"].foreach_param == "items"
    assert graph["fan"].split_parents == ["start", "b"]
    assert graph["fan_join"].type == "join" and graph["fan_join"].split_parents == ["start"]


def test_missing_end(write_flow):
    source = """
class NoEnd(FlowSpec):
    @step
    def start(self):
        self.next(self.start2)

    @step
    def start2(self):
        self.next(self.start2b)

    @step
    def start2b(self):
        pass
"""
    err = error_of(write_flow, source)
    assert "no 'end' step" in err.message
    assert err.line == line_of(source, "class NoEnd")


def test_next_to_a_non_step(write_flow):
    source = """
class Bad(FlowSpec):
    @step
    def start(self):
        self.next(self.helper)

    def helper(self):
        pass

    @step
    def end(self):
        pass
"""
    err = error_of(write_flow, source)
    assert "points at 'helper', which is not a @step" in err.message
    assert err.file.endswith("g.py") and err.line == line_of(source, "self.next(self.helper)")
    assert err.message.startswith(f"{err.file}:{err.line}: ")


def test_missing_next(write_flow):
    source = """
class Bad(FlowSpec):
    @step
    def start(self):
        self.x = 1

    @step
    def end(self):
        pass
"""
    err = error_of(write_flow, source)
    assert "does not call self.next" in err.message and err.line == line_of(source, "def start")


def test_unreachable_step(write_flow):
    source = """
class Bad(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def orphan(self):
        self.next(self.end)

    @step
    def end(self):
        pass
"""
    err = error_of(write_flow, source)
    assert "'orphan' can never run" in err.message and err.line == line_of(source, "def orphan")


def test_a_join_that_splits_again_is_refused_as_metaflow_does(write_flow):
    source = """
class Bad(FlowSpec):
    @step
    def start(self):
        self.next(self.a, self.b)

    @step
    def a(self):
        self.items = [1]
        self.next(self.meet)

    @step
    def b(self):
        self.items = [2]
        self.next(self.meet)

    @step
    def meet(self, inputs):
        self.items = [i.items[0] for i in inputs]
        self.next(self.each, foreach="items")

    @step
    def each(self):
        self.next(self.gather)

    @step
    def gather(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass
"""
    err = error_of(write_flow, source)
    assert "'meet' is both a join (it takes inputs) and a split" in err.message
    assert err.line == line_of(source, "def meet")


def test_branch_never_joined(write_flow):
    source = """
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
"""
    err = error_of(write_flow, source)
    assert "'end'" in err.message and "join" in err.message
    assert err.line == line_of(source, "def end")


def test_join_without_inputs_argument(write_flow):
    source = """
class Bad(FlowSpec):
    @step
    def start(self):
        self.next(self.a, self.b)

    @step
    def a(self):
        self.next(self.join)

    @step
    def b(self):
        self.next(self.join)

    @step
    def join(self):
        self.next(self.end)

    @step
    def end(self):
        pass
"""
    err = error_of(write_flow, source)
    assert "def join(self, inputs)" in err.message and err.line == line_of(source, "def join")


def test_inputs_without_a_split(write_flow):
    source = """
class Bad(FlowSpec):
    @step
    def start(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass
"""
    err = error_of(write_flow, source)
    assert "joins no split" in err.message and err.line == line_of(source, "def join")


def test_loop(write_flow):
    source = """
class Bad(FlowSpec):
    @step
    def start(self):
        self.next(self.a)

    @step
    def a(self):
        self.next(self.start)

    @step
    def end(self):
        pass
"""
    err = error_of(write_flow, source)
    assert "start" in err.message and err.line == line_of(source, "self.next(self.start)")


def test_next_not_last_statement(write_flow):
    source = """
class Bad(FlowSpec):
    @step
    def start(self):
        self.next(self.end)
        self.x = 1

    @step
    def end(self):
        pass
"""
    err = error_of(write_flow, source)
    assert "must end with its self.next" in err.message and err.line == line_of(source, "def start")


def named(flow: str = "Named", middle: str = "middle") -> str:
    """A three-step flow whose class and middle step have the names given."""
    return f"""
class {flow}(FlowSpec):
    @step
    def start(self):
        self.next(self.{middle})

    @step
    def {middle}(self):
        self.next(self.end)

    @step
    def end(self):
        pass
"""


def test_names_the_datastore_holds_are_accepted(write_flow):
    graph = graph_of(write_flow, named("F" * 128, "m" * 128))
    assert graph.name == "F" * 128 and "m" * 128 in graph


@pytest.mark.parametrize("flow, message", [
    ("Флоу", ("flow name 'Флоу' is not an ASCII identifier (the letters A-Z and a-z, digits and '_', "
              "not starting with a digit); rename the class")),
    ("F" * 129, (f"flow name '{'F' * 20}...' is 129 characters long, more than the 128 a name may have; "
                 "rename the class")),
])
def test_flow_names_the_datastore_cannot_hold(write_flow, flow, message):
    source = named(flow=flow)
    err = error_of(write_flow, source)
    assert err.message.endswith(message) and err.line == line_of(source, f"class {flow}")


@pytest.mark.parametrize("middle, message", [
    ("шаг", "step name 'шаг' is not an ASCII identifier"),
    ("m" * 129, "is 129 characters long, more than the 128 a name may have"),
    ("_parameters", "step name '_parameters' starts with '_', which Flow keeps for its own steps"),
    ("_mine", "step name '_mine' starts with '_'"),
    ("next", "step name 'next' is reserved: it would hide self.next of every flow"),
    ("merge_artifacts", "step name 'merge_artifacts' is reserved"),
    ("cmd", "step name 'cmd' is reserved"),
])
def test_step_names_the_datastore_cannot_hold_or_flow_keeps(write_flow, middle, message):
    source = named(middle=middle)
    err = error_of(write_flow, source)
    assert message in err.message and err.message.endswith("; rename the step")
    assert err.file.endswith("g.py") and err.line == line_of(source, f"def {middle}")


# -- switches -----------------------------------------------------------------------------

SWITCH_LOOP = """
class Switchy(FlowSpec):
    @step
    def start(self):
        self.next({"x": self.a, "y": self.b}, condition="choice")

    @step
    def a(self):
        self.next(self.check)

    @step
    def b(self):
        self.next(self.check)

    @step
    def check(self):
        self.next({"again": self.a, "done": self.end}, condition="status")

    @step
    def end(self):
        pass
"""


def test_switch_and_recursive_switch_graph(write_flow):
    graph = graph_of(write_flow, SWITCH_LOOP)
    start, check = graph["start"], graph["check"]
    assert start.type == check.type == "split-switch"
    assert start.switch_cases == {"x": "a", "y": "b"} and start.condition == "choice"
    assert check.out_funcs == ["a", "end"]
    assert sorted(graph["check"].in_funcs) == ["a", "b"]  # the cases meet without a join
    assert sorted(graph["a"].in_funcs) == ["check", "start"]  # and the loop comes back
    assert "    => a or end (switch on 'status': 'again' -> a, 'done' -> end)" in graph.describe()


def _switch_flow(next_call: str, extra: str = "") -> str:
    return f"""
class Bad(FlowSpec):
    @step
    def start(self):
        self.next(self.a, self.b)

    @step
    def a(self):
        {next_call}

    @step
    def b(self):
        self.next(self.join)

    @step
    def c(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)
{extra}
    @step
    def end(self):
        pass
"""


@pytest.mark.parametrize("next_call, message", [
    ('self.next({"x": self.c, "y": self.join}, condition="k")',
     "the case 'y' of the switch in step 'a' goes straight to the join 'join'"),
    ('self.next({"x": self.c, "y": "join"}, condition="k")',
     "the case 'y' of the switch in step 'a' must name a step as self.<step>, not 'join'"),
    ('self.next({"x": self.c, "y": self.nothing}, condition="k")',
     "the case 'y' of the switch in step 'a' points at 'nothing', which is not a @step of Bad"),
    ('self.next({"x": self.c, "y": self.b})', "the switch in step 'a' needs condition="),
    ('self.next({"x": self.c}, condition=name)', "condition in step 'a' must be the name of an artifact"),
    ('self.next({"x": self.c}, condition="not-a-name")', "condition 'not-a-name' in step 'a' is not an artifact"),
    ('self.next({"x": self.c}, condition="next")', "condition 'next' of the switch in step 'a' is not an artifact"),
    ('self.next({"x": self.c}, self.b, condition="k")', "must pass self.next exactly one dict of cases"),
    ('self.next({}, condition="k")', "the switch in step 'a' has no cases"),
    ('self.next({"x": self.c}, condition="k", foreach="items")', "cannot both switch and foreach"),
    ('self.next({"x": self.c, "x": self.c}, condition="k")', "has the case 'x' twice"),
])
def test_switch_mistakes_are_reported_with_file_and_line(write_flow, next_call, message):
    source = _switch_flow(next_call)
    err = error_of(write_flow, source)
    assert message in err.message
    assert err.line == line_of(source, next_call) and err.file.endswith("g.py")


def test_switch_case_into_another_branch_is_rejected(write_flow):
    source = _switch_flow('self.next({"x": self.c, "y": self.b}, condition="k")')
    err = error_of(write_flow, source)
    assert "'b'" in err.message and "join" in err.message


def test_recursive_switch_that_never_leaves_its_loop(write_flow):
    source = """
class Bad(FlowSpec):
    @step
    def start(self):
        self.next({"x": self.spin, "y": self.end}, condition="k")

    @step
    def spin(self):
        self.next({"again": self.spin, "also": self.spin}, condition="k")

    @step
    def end(self):
        pass
"""
    err = error_of(write_flow, source)
    assert "'spin' never leads to 'end'" in err.message
    assert err.line == line_of(source, 'self.next({"again"')


def test_only_a_switch_may_loop_back(write_flow):
    source = """
class Bad(FlowSpec):
    @step
    def start(self):
        self.next({"x": self.a, "y": self.end}, condition="k")

    @step
    def a(self):
        self.next(self.b)

    @step
    def b(self):
        self.next(self.a)

    @step
    def end(self):
        pass
"""
    err = error_of(write_flow, source)
    assert "goes back to 'a'" in err.message and err.line == line_of(source, "self.next(self.a)\n\n    @step\n    def end")


# -- @parallel and num_parallel ----------------------------------------------------------------

PARALLEL_HEADER = "from flow_core import parallel\n"

GANG = """
class Gang(FlowSpec):
    @step
    def start(self):
        self.next(self.train, num_parallel=4)

    @parallel
    @step
    def train(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass
"""


def test_num_parallel_starts_a_gang_of_a_parallel_step_that_a_join_gathers(write_flow):
    graph = graph_of(write_flow, PARALLEL_HEADER + GANG)
    start, train = graph["start"], graph["train"]
    assert start.type == "foreach" and start.parallel_foreach and start.num_parallel == 4
    assert train.parallel_step and train.split_parents == ["start"]
    assert start.matching_join == "join"
    assert "    => train (@parallel gang of num_parallel=4 tasks started together)" in graph.describe()
    assert "Step train  @parallel" in graph.describe()


def test_num_parallel_may_be_computed(write_flow):
    graph = graph_of(write_flow, PARALLEL_HEADER + GANG.replace("num_parallel=4", "num_parallel=self.width"))
    assert graph["start"].num_parallel is None
    assert "num_parallel=self.width" in graph.describe()


@pytest.mark.parametrize("change, message, needle", [
    (("    @parallel\n", ""),
     "step 'start' starts 'train' with num_parallel, but 'train' has no @parallel decorator; add @parallel "
     "above its @step", "self.next(self.train, num_parallel"),
    (("self.next(self.train, num_parallel=4)", "self.next(self.train)"),
     "step 'train' is @parallel, but step 'start' goes to it without num_parallel; write "
     "self.next(self.train, num_parallel=N)", "self.next(self.train)"),
    (("num_parallel=4", "num_parallel=0"),
     "num_parallel in step 'start' must be at least 1, not 0", "self.next(self.train, num_parallel"),
    (("num_parallel=4", "num_parallel=4, foreach='xs'"),
     "step 'start' cannot both foreach and use num_parallel in one self.next", "self.next(self.train, num_parallel"),
])
def test_num_parallel_mistakes_are_reported_with_file_and_line(write_flow, change, message, needle):
    source = PARALLEL_HEADER + GANG.replace(*change)
    err = error_of(write_flow, source)
    assert str(err).endswith(f":{err.line}: {message}")
    assert err.line == line_of(source, needle)


def test_a_parallel_step_must_go_straight_to_a_join(write_flow):
    source = PARALLEL_HEADER + GANG.replace("self.next(self.join)", "self.next(self.after)").replace(
        "    @step\n    def join", "    @step\n    def after(self):\n        self.next(self.join)\n\n    @step\n    def join")
    err = error_of(write_flow, source)
    assert ("the @parallel step 'train' must go to a join that gathers its gang, as in self.next(self.join) "
            "with def join(self, inputs)") in str(err)
    assert err.line == line_of(source, "self.next(self.after)")
