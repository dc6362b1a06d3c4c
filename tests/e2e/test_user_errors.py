"""Mistakes in the user's code or input are reported as the user's, in one sentence.

Each case here used to end in "Internal error … This is a bug in Flow" (or in a failure deep
inside a run): a flow file importing a missing module, names and pathspecs that are not
text, a JSON parameter nested too deeply, a decorator attribute that is not a number, a
profile file that is not UTF-8, and flow or step names no datastore can hold.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
from flow_core import Flow, Run, Step, Task
from flow_core.client import TaggingError, default_namespace, namespace
from flow_core.errors import ConfigError, NotFound
from flow_core.testing import last_error, run_id_of

HELLO = """
    from flow_core import FlowSpec, JSONType, Parameter, step

    class Hello(FlowSpec):
        config = Parameter("config", type=JSONType, default="{}")
        who = Parameter("who", default="world")

        @step
        def start(self):
            self.next(self.end)

        @step
        def end(self):
            pass

    if __name__ == "__main__":
        Hello()
"""


def assert_users_error(result, message: str, exit_code: int = 1) -> None:
    """The command failed with ``message`` as its last line, blaming the user, not Flow."""
    assert result.returncode == exit_code, result.stderr
    assert message in last_error(result), result.stderr
    assert "Internal error" not in result.stderr and "Traceback" not in result.stderr, result.stderr


def no_runs_were_made(records) -> bool:
    return records.metadata.list_flows() == []


# -- the flow file ----------------------------------------------------------------------------

def test_a_missing_module_is_the_users_import_shown_with_file_and_line(write_flow, flow_cli, records):
    path = write_flow("needs.py", HELLO.replace("    from flow_core", "    import no_such_module_of_yours\n"
                                                              "    from flow_core", 1))
    for command in ("check", "run"):
        assert_users_error(flow_cli(command, str(path)),
                           f"{path}:1: `import no_such_module_of_yours` failed: there is no module named "
                           "'no_such_module_of_yours'; install the package that provides it")
    assert no_runs_were_made(records)


def test_a_missing_module_imported_by_the_users_helper_names_the_helper(write_flow, flow_cli):
    helper = write_flow("helpers.py", "import os\nfrom no_such_package.sub import thing\n")
    path = write_flow("uses.py", "import helpers\n" + textwrap.dedent(HELLO))
    assert_users_error(flow_cli("check", str(path)),
                       f"{helper}:2: `from no_such_package.sub import thing` failed: there is no module named "
                       "'no_such_package'")


def test_other_errors_while_importing_the_flow_file_are_the_users(write_flow, flow_cli):
    path = write_flow("raises.py", textwrap.dedent(HELLO) + "raise RuntimeError('no settings file')\n")
    line = path.read_text().count("\n")
    assert_users_error(flow_cli("check", str(path)),
                       f"{path}:{line}: importing the flow file raised RuntimeError: no settings file; "
                       "fix the code there")


# -- names and pathspecs that are not text ----------------------------------------------------

def test_pathspecs_and_tags_that_are_not_text_name_nothing(write_flow, flow_cli):
    path = write_flow("hello.py", HELLO)
    run_id = run_id_of(flow_cli("run", str(path)).stdout)
    assert_users_error(flow_cli("dump", str(path), f"{run_id}/".encode() + b"\xff\xfe"),
                       f"step 'Hello/{run_id}/\\udcff\\udcfe' cannot exist: '\\udcff\\udcfe' is not valid "
                       "UTF-8 text; check the pathspec")
    assert_users_error(flow_cli("logs", str(path), b"\xff"),
                       "run 'Hello/\\udcff' cannot exist: '\\udcff' is not valid UTF-8 text")
    namespace(None)
    try:
        with pytest.raises(TaggingError, match="'x\\\\udcff' is not valid UTF-8 text, so it cannot be a tag"):
            Run(f"Hello/{run_id}").add_tag("x\udcff")
        with pytest.raises(TaggingError, match="is not valid UTF-8 text, so no run carries it as a tag"):
            list(Flow("Hello").runs("\udcff"))
        with pytest.raises(ValueError, match="is not valid UTF-8 text, so it cannot be a namespace"):
            namespace("user:\udcff")
    finally:
        default_namespace()


def test_a_flow_file_whose_path_is_not_text_is_refused_before_a_run(write_flow, flow_cli, python_flow, records):
    path = write_flow(os.fsdecode(b"h\xe9llo.py"), HELLO)  # a Latin-1 name on a UTF-8 system
    message = f"the flow file's path '{path.parent}/h\\udce9llo.py' is not valid UTF-8 text; rename the file"
    for result in (flow_cli("check", str(path)), flow_cli("run", str(path)), python_flow(path, "run")):
        assert_users_error(result, message)
    assert no_runs_were_made(records)


def test_client_pathspecs_that_are_not_text_are_not_found(flow_env):
    for make, pathspec, kind in [(Flow, "F\udcff", "flow"), (Run, "F/\udcff", "run"), (Step, "F/1/\udcff", "step"),
                                 (Task, "F/1/start/\udcff", "task"), (Run, "F/a\x00", "run")]:
        with pytest.raises(NotFound, match=f"{kind} .* cannot exist: .* check the pathspec"):
            make(pathspec)


def test_client_run_number_too_big_to_exist_is_not_found(flow_env):
    with pytest.raises(NotFound, match="run F/99999999999999999999999 does not exist"):
        Run("F/99999999999999999999999")
    with pytest.raises(NotFound):
        Task("F/99999999999999999999999/start/99999999999999999999999")


@pytest.mark.parametrize("tag, problem", [
    (b"t\xff", "'t\\udcff' is not valid UTF-8 text"),
    ("", "'' is empty"),
    ("x" * 501, "'xxxxxxxxxxxxxxxxxxxx'... is 501 characters long"),
])
def test_tags_no_backend_can_store_are_refused_before_the_run(write_flow, flow_cli, python_flow, records, tag,
                                                              problem):
    path = write_flow("hello.py", HELLO)
    message = f"Invalid value for '--tag': {problem}"
    assert_users_error(flow_cli("run", str(path), "--tag", tag), message, exit_code=2)
    assert_users_error(python_flow(path, "run", "--tag", tag), message, exit_code=2)
    assert_users_error(flow_cli("init", str(path), "--tag", tag), message, exit_code=2)
    assert no_runs_were_made(records)


def test_run_ids_that_are_not_text_are_refused(write_flow, flow_cli, records):
    path = write_flow("hello.py", HELLO)
    assert_users_error(flow_cli("init", str(path), "--run-id", b"r\xff"),
                       "Invalid value for '--run-id': 'r\\udcff' is not valid UTF-8 text; give names in UTF-8",
                       exit_code=2)
    assert_users_error(flow_cli("resume", str(path), "--origin-run-id", b"\xff"),
                       "Invalid value for '--origin-run-id': '\\udcff' is not valid UTF-8 text", exit_code=2)
    assert no_runs_were_made(records)


def test_a_parameter_that_is_not_text_is_refused(write_flow, flow_cli, records):
    result = flow_cli("run", str(write_flow("hello.py", HELLO)), "--who", b"J\xfcrgen")
    assert_users_error(result, "parameter --who: 'J\\udcfcrgen' is not valid UTF-8 text; pass UTF-8 text")
    assert no_runs_were_made(records)


def test_a_user_name_that_is_not_text_is_refused(write_flow, flow_cli, records):
    result = flow_cli("run", str(write_flow("hello.py", HELLO)), env={"METAFLOW_USER": b"\xff"})
    assert_users_error(result, "your user name '\\udcff' is not valid UTF-8 text; set METAFLOW_USER")
    assert no_runs_were_made(records)


# -- values -----------------------------------------------------------------------------------

def test_a_json_parameter_nested_too_deeply_is_refused(write_flow, flow_cli, records):
    result = flow_cli("run", str(write_flow("hello.py", HELLO)), "--config", "[" * 100_000)
    assert_users_error(result, "Invalid value for '--config': '[[[[", exit_code=2)
    assert "(100000 characters) is nested too deeply to be read as JSON; pass a flatter value" in last_error(result)
    assert no_runs_were_made(records)


@pytest.mark.parametrize("decospec, message", [
    ("timeout:seconds=abc", "@timeout on step start: seconds must be a number >= 0, not 'abc'"),
    ("timeout:minutes=1e400", "@timeout on step start: minutes must be a number >= 0, not inf"),
    ("timeout:hours=10000000", "@timeout on step start is 3.6e+10 seconds long; the most it can be is 1e+09"),
    ("retry:minutes_between_retries=soon", "@retry on step start: minutes_between_retries must be a number >= 0"),
    ("resources:cpu=many", "@resources on step start: cpu must be a number >= 0, not 'many'"),
])
def test_decorator_attributes_that_are_not_numbers_are_refused(write_flow, flow_cli, records, decospec, message):
    result = flow_cli("run", str(write_flow("hello.py", HELLO)), "--with", decospec)
    assert_users_error(result, message)
    assert no_runs_were_made(records)


def test_numbers_given_as_text_still_work(write_flow, flow_cli):
    result = flow_cli("run", str(write_flow("hello.py", HELLO)), "--with", "timeout:seconds='30'",
                      "--with", "resources:cpu='1'")
    assert result.returncode == 0, result.stderr


def test_a_profile_that_is_not_utf8_is_the_users_to_fix(write_flow, flow_cli, flow_env):
    profile = Path(flow_env["METAFLOW_HOME"]) / "config.json"
    profile.parent.mkdir(parents=True)
    profile.write_bytes(b'{"METAFLOW_USER": "\xff"}')
    message = f"the profile file {profile} is not UTF-8 text (byte 0xff at offset 19); save it as UTF-8 or remove it"
    assert_users_error(flow_cli("run", str(write_flow("hello.py", HELLO))), message)
    assert_users_error(flow_cli("configure", "show"), message)
    with pytest.raises(ConfigError, match="is not UTF-8 text"):
        Flow("Hello")


# -- names the datastore cannot hold ----------------------------------------------------------

NAMED = """
    from flow_core import FlowSpec, step

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


@pytest.mark.parametrize("flow, middle, line, message", [
    ("Флоу", "middle", 3, "flow name 'Флоу' is not an ASCII identifier"),
    ("F" * 300, "middle", 3, "is 300 characters long, more than the 128 a name may have; rename the class"),
    ("Named", "шаг", 9, "step name 'шаг' is not an ASCII identifier"),
    ("Named", "_parameters", 9, "step name '_parameters' starts with '_', which Flow keeps for its own steps"),
])
def test_names_the_datastore_cannot_hold_are_refused_by_check_and_before_a_run(write_flow, flow_cli, records,
                                                                               flow, middle, line, message):
    path = write_flow("named.py", NAMED.format(flow=flow, middle=middle))
    for command in ("check", "run"):
        result = flow_cli(command, str(path))
        assert_users_error(result, message)
        assert last_error(result).startswith(f"Error: {path}:{line}: ")
    assert no_runs_were_made(records)


def test_a_foreach_over_nothing_fails_its_step_instead_of_ending_the_run_early(write_flow, flow_cli, records):
    path = write_flow("empty.py", """
        from flow_core import FlowSpec, step

        class Empty(FlowSpec):
            @step
            def start(self):
                self.items = []
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
    result = flow_cli("run", str(path))
    assert result.returncode == 1
    assert f"{path}:7: the foreach over 'items' in step 'start' produced zero splits; check self.items" in result.stderr
    assert "Done!" not in result.stdout
    (run,) = [r for r in records.runs("Empty")]
    assert run.status == "failed"
