"""The flow's graph, read from its source so that every error has a file and a line.

The graph is built statically: each step's last statement must be ``self.next(...)`` (except
``end``'s), naming other steps as ``self.<step>``. Validation runs before any task: a flow or
step name the datastore cannot hold (see `flow_core.model.names`), no ``start``/``end``, a
target that is not a step, an unreachable step, a split that is never joined, a join that
takes no ``inputs``, a cycle other than a recursive switch's (see `flow_core.model.switch`),
a ``num_parallel`` gang that is not a @parallel step followed by a join (`flow_core.model.parallel`).
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from typing import Any, Iterator

import attrs

from flow_core.errors import GraphError
from flow_core.model.flowspec import FlowSpec
from flow_core.model.names import name_problem
from flow_core.model.parallel import (PARALLEL_DECORATOR, PARALLEL_FOREACH_VAR, check_parallel, describe_parallel,
                                      parse_num_parallel)
from flow_core.model.switch import SWITCH, check_switches, describe_cases, is_switch_call, parse_switch

START, END = "start", "end"

#: Step names that would hide what ``self`` must keep (``self.next``, ``self.input``…), and
#: those Metaflow reserves, so a Metaflow flow that passes here passes there too.
RESERVED_STEP_NAMES = frozenset({n for n in dir(FlowSpec) if not n.startswith("_")} | {"cmd"})

# Node types, as Metaflow names them.
LINEAR, SPLIT, FOREACH, JOIN = "linear", "split", "foreach", "join"


@attrs.define
class StepNode:
    name: str
    line: int
    doc: str = ""
    type: str = LINEAR
    out_funcs: list[str] = attrs.Factory(list)
    in_funcs: list[str] = attrs.Factory(list)
    foreach_param: str | None = None
    takes_inputs: bool = False
    #: Line of the step's ``self.next`` call, for errors about it.
    next_line: int | None = None
    #: The splits (and foreaches) this step is inside, outermost first.
    split_parents: list[str] = attrs.Factory(list)
    #: For a split or foreach: the join that closes it.
    matching_join: str | None = None
    decorators: list[str] = attrs.Factory(list)
    #: For a switch: case key -> step, and the artifact whose value picks the case.
    switch_cases: dict = attrs.Factory(dict)
    condition: str | None = None
    #: (split, branch) for every split and foreach this step is inside, outermost first: the
    #: branch is the split's child this step descends from. A join closing a static split
    #: waits for one input per branch, whichever steps of a branch's switch ran.
    branch_path: list[tuple[str, str]] = attrs.Factory(list)
    #: For ``self.next(self.x, num_parallel=N)``: N as written, and its value when a literal.
    #: Such a step is a foreach over the gang's node indices (see `flow_core.model.parallel`).
    num_parallel_expr: str | None = None
    num_parallel: int | None = None

    @property
    def parallel_foreach(self) -> bool:
        """Whether this step starts a @parallel gang (Metaflow's name)."""
        return self.num_parallel_expr is not None

    @property
    def parallel_step(self) -> bool:
        """Whether this step is @parallel: its tasks run as a gang (Metaflow's name)."""
        return PARALLEL_DECORATOR in self.decorators


class FlowGraph:
    """The steps of one FlowSpec class, linked and validated."""

    def __init__(self, flow_cls: type, file: str | None = None):
        self.name = flow_cls.__name__
        self.file = file or inspect.getsourcefile(flow_cls) or "<unknown>"
        self.nodes: dict[str, StepNode] = {}
        class_def = _find_class(flow_cls, self.file)
        self.class_line = class_def.lineno
        problem = name_problem(self.name, "flow")
        if problem:
            raise self.error(f"{problem}; rename the class", self.class_line)
        step_names = set(flow_cls.step_functions())
        for required in (START, END):
            if required not in step_names:
                raise self.error(f"{self.name} has no '{required}' step; every flow starts at 'start' and ends at 'end'",
                                 self.class_line)
        for item in class_def.body:
            if isinstance(item, ast.FunctionDef) and item.name in step_names:
                self.nodes[item.name] = self._parse_step(item, step_names)
        for name in step_names - set(self.nodes):
            # A step inherited from a base class: parse it where it is defined.
            function = getattr(flow_cls, name)
            self.nodes[name] = self._parse_inherited(function, step_names)
        self._check_step_names()
        self._link()
        self._validate()

    # -- parsing --------------------------------------------------------------------------

    def _parse_step(self, func: ast.FunctionDef, step_names: set[str]) -> StepNode:
        node = StepNode(func.name, func.lineno, ast.get_docstring(func) or "")
        node.takes_inputs = len(func.args.args) >= 2
        node.decorators = [_decorator_name(d) for d in func.decorator_list if _decorator_name(d) != "step"]
        body = [stmt for stmt in func.body if not _is_docstring(stmt)]
        last = body[-1] if body else None
        call = _next_call(last)
        if call is None:
            if any(_next_call(stmt) for stmt in ast.walk(func) if isinstance(stmt, ast.Expr)):
                raise self.error(f"step '{func.name}' must end with its self.next(...) call", func.lineno)
            if func.name != END:
                raise self.error(
                    f"step '{func.name}' does not call self.next(...); every step but 'end' must end with one",
                    func.lineno,
                )
            return node
        if func.name == END:
            raise self.error("the 'end' step must not call self.next", call.lineno)
        node.next_line = call.lineno
        if is_switch_call(call):
            node.switch_cases, node.condition = parse_switch(call, func.name, step_names, self.name, self.error)
            node.out_funcs = list(dict.fromkeys(node.switch_cases.values()))
            return node
        for arg in call.args:
            target = _self_attribute(arg)
            if target is None:
                raise self.error(
                    f"self.next in step '{func.name}' must name steps as self.<step>, not {ast.unparse(arg)}",
                    call.lineno,
                )
            if target not in step_names:
                raise self.error(
                    f"self.next in step '{func.name}' points at '{target}', which is not a @step of {self.name}",
                    call.lineno,
                )
            node.out_funcs.append(target)
        for keyword in call.keywords:
            if keyword.arg == "foreach":
                if not (isinstance(keyword.value, ast.Constant) and isinstance(keyword.value.value, str)):
                    raise self.error(
                        f"foreach in step '{func.name}' must be the name of an artifact as a string literal",
                        call.lineno,
                    )
                node.foreach_param = keyword.value.value
            elif keyword.arg == "num_parallel":
                node.num_parallel_expr, node.num_parallel = parse_num_parallel(keyword.value)
            else:
                raise self.error(f"self.next in step '{func.name}' has an unknown argument '{keyword.arg}'", call.lineno)
        if not node.out_funcs:
            raise self.error(f"self.next in step '{func.name}' names no step", call.lineno)
        if node.foreach_param and len(node.out_funcs) != 1:
            raise self.error(f"a foreach in step '{func.name}' must go to exactly one step", call.lineno)
        if node.num_parallel_expr is not None:
            if node.foreach_param:
                raise self.error(f"step '{func.name}' cannot both foreach and use num_parallel in one self.next",
                                 call.lineno)
            if len(node.out_funcs) != 1:
                raise self.error(f"num_parallel in step '{func.name}' must go to exactly one @parallel step",
                                 call.lineno)
            node.foreach_param = PARALLEL_FOREACH_VAR
        return node

    def _parse_inherited(self, function, step_names: set[str]) -> StepNode:
        source = textwrap.dedent(inspect.getsource(function))
        func = ast.parse(source).body[0]
        offset = inspect.getsourcelines(function)[1] - 1
        for item in ast.walk(func):
            if hasattr(item, "lineno"):
                item.lineno += offset
        assert isinstance(func, ast.FunctionDef)
        return self._parse_step(func, step_names)

    # -- linking and validation ------------------------------------------------------------

    def _check_step_names(self) -> None:
        """Every step name is stored as a datastore key and a metadata name; reject the ones
        no backend holds, or that Flow keeps for itself, before anything runs."""
        for node in sorted(self.nodes.values(), key=lambda n: n.line):
            problem = name_problem(node.name, "step")
            if problem is None and node.name.startswith("_"):
                problem = (f"step name {node.name!r} starts with '_', which Flow keeps for its own "
                           "steps (such as _parameters)")
            if problem is None and node.name in RESERVED_STEP_NAMES:
                problem = f"step name {node.name!r} is reserved: it would hide self.{node.name} of every flow"
            if problem:
                raise self.error(f"{problem}; rename the step", node.line)

    def _link(self) -> None:
        for node in self.nodes.values():
            for target in node.out_funcs:
                self.nodes[target].in_funcs.append(node.name)
        for node in self.nodes.values():
            if node.condition is not None:
                node.type = SWITCH
            elif node.foreach_param:
                node.type = FOREACH
            elif len(node.out_funcs) > 1:
                node.type = SPLIT
            elif node.takes_inputs:
                node.type = JOIN
            else:
                node.type = LINEAR
        if START in self.nodes and self.nodes[START].type == LINEAR:  # a split start stays a split
            self.nodes[START].type = START
        if END in self.nodes and not self.nodes[END].takes_inputs:
            self.nodes[END].type = END

    def _validate(self) -> None:
        if self.nodes[START].in_funcs:
            raise self.error("no step may go back to 'start'", self.nodes[self.nodes[START].in_funcs[0]].next_line)
        if self.nodes[START].takes_inputs:
            raise self.error("the 'start' step cannot take inputs", self.nodes[START].line)
        reachable, pending = {START}, [START]
        while pending:
            for target in self.nodes[pending.pop()].out_funcs:
                if target not in reachable:
                    reachable.add(target)
                    pending.append(target)
        for node in self.nodes.values():
            if node.name not in reachable:
                raise self.error(f"step '{node.name}' can never run: no step's self.next leads to it", node.line)
            if node.takes_inputs and node.type in (SPLIT, FOREACH, SWITCH):
                raise self.error(f"step '{node.name}' is both a join (it takes inputs) and a split (its self.next "
                                 "starts several tasks); add a step after the join that splits", node.line)
        self._check_cycles()
        self._check_reaches_end()
        check_switches(self)
        check_parallel(self)
        self._assign_split_parents()
        end = self.nodes[END]
        if end.split_parents:
            raise self.error(
                f"the split at step '{end.split_parents[-1]}' is never joined before 'end'",
                self.nodes[end.split_parents[-1]].next_line,
            )

    def _check_cycles(self) -> None:
        """Only a switch may go back to an earlier step (a recursive switch); any other edge
        back is a loop nothing could ever leave."""
        state: dict[str, int] = {}  # 1 = on the current path, 2 = done

        def visit(name: str) -> None:
            state[name] = 1
            node = self.nodes[name]
            for target in node.out_funcs:
                if state.get(target) == 1:
                    if node.type == SWITCH:
                        continue
                    raise self.error(f"self.next in step '{name}' goes back to '{target}', making a loop; "
                                     "only a switch may loop back", node.next_line)
                if target not in state:
                    visit(target)
            state[name] = 2

        visit(START)

    def _check_reaches_end(self) -> None:
        """A recursive switch whose every case loops back would never end."""
        leads_to_end, pending = {END}, [END]
        while pending:
            for source in self.nodes[pending.pop()].in_funcs:
                if source not in leads_to_end:
                    leads_to_end.add(source)
                    pending.append(source)
        for node in sorted(self.nodes.values(), key=lambda n: n.line):
            if node.name not in leads_to_end:
                raise self.error(f"step '{node.name}' never leads to 'end': every path from it loops back; "
                                 "give its switch a case that leaves the loop", node.next_line or node.line)

    def _assign_split_parents(self) -> set[str]:
        """Walk from start, tracking which splits (and which of their branches) each step is
        inside; returns the steps reached. A step reached twice must be reached from the same
        branches: the cases of a switch and the turns of a loop meet without a join, the
        branches of a split only at their join."""
        paths: dict[str, tuple[tuple[str, str], ...]] = {START: ()}
        pending = [START]
        while pending:
            node = self.nodes[pending.pop()]
            for target_name in node.out_funcs:
                target = self.nodes[target_name]
                path = paths[node.name]
                if node.type in (SPLIT, FOREACH):
                    path = path + ((node.name, target_name),)
                if target.takes_inputs:
                    if node.type == FOREACH:
                        raise self.error(
                            f"the foreach in step '{node.name}' goes straight to the join '{target.name}'; "
                            "it must go to a step that runs once per item",
                            node.next_line,
                        )
                    if not path:
                        raise self.error(
                            f"step '{target.name}' takes inputs, but it joins no split: only a step after "
                            "a split or foreach may take `inputs`",
                            target.line,
                        )
                    closed = path[-1][0]
                    path = path[:-1]
                    other = self.nodes[closed].matching_join
                    if other not in (None, target.name):
                        raise self.error(f"the branches of step '{closed}' end in two joins, '{other}' and "
                                         f"'{target.name}'; all branches must meet in one join", target.line)
                    self.nodes[closed].matching_join = target.name
                if target_name in paths:
                    if paths[target_name] == path:
                        continue
                    if not target.takes_inputs:
                        raise self.error(
                            f"step '{target.name}' is reached from {', '.join(map(repr, target.in_funcs))} and "
                            f"must join them: define it as `def {target.name}(self, inputs):`",
                            target.line,
                        )
                    raise self.error(
                        f"step '{target_name}' is reached from branches of different splits; "
                        "join the branches of each split first",
                        target.line,
                    )
                paths[target_name] = path
                pending.append(target_name)
        for name, path in paths.items():
            self.nodes[name].branch_path = list(path)
            self.nodes[name].split_parents = [split for split, _branch in path]
        for node in self.nodes.values():
            if node.type in (SPLIT, FOREACH) and node.name in paths and node.matching_join is None:
                raise self.error(f"the split at step '{node.name}' is never joined", node.next_line)
        return set(paths)

    # -- reading --------------------------------------------------------------------------

    def error(self, message: str, line: int | None) -> GraphError:
        return GraphError(message, self.file, line)

    def as_data(self) -> dict[str, Any]:
        """The graph as plain data, in the order `show` lists steps (what a UI draws before any
        task of a step ran): each step's type, next steps, foreach variable, join and line."""
        return {"steps": [{"name": n.name, "type": n.type, "next": list(n.out_funcs), "line": n.line,
                           "foreach": n.foreach_param, "matching_join": n.matching_join,
                           "doc": n.doc.strip().split("\n")[0] if n.doc else ""}
                          for n in self]}

    def __getitem__(self, name: str) -> StepNode:
        return self.nodes[name]

    def __contains__(self, name: str) -> bool:
        return name in self.nodes

    def __iter__(self) -> Iterator[StepNode]:
        return iter(self.sorted_nodes())

    def sorted_nodes(self) -> list[StepNode]:
        """Steps in the order a reader follows them: breadth-first from start, end last."""
        order: list[str] = []
        queue = [START]
        while queue:
            name = queue.pop(0)
            if name in order or name == END:
                continue
            order.append(name)
            queue.extend(self.nodes[name].out_funcs)
        order.append(END)
        return [self.nodes[name] for name in order]

    def describe(self) -> str:
        """The text `show` prints."""
        lines = []
        for node in self:
            lines.append(f"Step {node.name}" + (f"  @{' @'.join(node.decorators)}" if node.decorators else ""))
            if node.doc:
                lines.extend("    " + line for line in node.doc.splitlines())
            if node.parallel_foreach:
                lines.append(f"    => {node.out_funcs[0]} {describe_parallel(node.num_parallel_expr or '')}")
            elif node.type == FOREACH:
                lines.append(f"    => {node.out_funcs[0]} (foreach over '{node.foreach_param}')")
            elif node.type == SWITCH:
                lines.append(f"    => {' or '.join(node.out_funcs)} (switch on '{node.condition}': "
                             f"{describe_cases(node.switch_cases)})")
            elif node.out_funcs:
                lines.append(f"    => {', '.join(node.out_funcs)}")
            lines.append("")
        return "\n".join(lines).rstrip() + "\n"


def _find_class(flow_cls: type, file: str) -> ast.ClassDef:
    try:
        source = open(file, encoding="utf-8").read()
    except OSError as exc:
        raise GraphError(f"cannot read the source of {flow_cls.__name__}: {exc.strerror}", file) from None
    tree = ast.parse(source, file)
    try:
        first_line = inspect.getsourcelines(flow_cls)[1]
    except (OSError, TypeError):
        first_line = None
    candidates = [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == flow_cls.__name__]
    for candidate in candidates:
        lines = [candidate.lineno] + [d.lineno for d in candidate.decorator_list]
        if first_line is None or first_line in lines:
            return candidate
    if candidates:
        return candidates[0]
    raise GraphError(f"cannot find class {flow_cls.__name__} in its source file", file)


def _is_docstring(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)


def _next_call(stmt: ast.AST | None) -> ast.Call | None:
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
        func = stmt.value.func
        if isinstance(func, ast.Attribute) and func.attr == "next" and _is_self(func.value):
            return stmt.value
    return None


def _is_self(expr: ast.AST) -> bool:
    return isinstance(expr, ast.Name) and expr.id == "self"


def _self_attribute(expr: ast.AST) -> str | None:
    if isinstance(expr, ast.Attribute) and _is_self(expr.value):
        return expr.attr
    return None


def _decorator_name(expr: ast.AST) -> str:
    if isinstance(expr, ast.Call):
        expr = expr.func
    if isinstance(expr, ast.Attribute):
        return expr.attr
    if isinstance(expr, ast.Name):
        return expr.id
    return ast.unparse(expr)
