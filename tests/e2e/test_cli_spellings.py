"""The command line as a Metaflow user reaches for it, and help text that reads whole."""

from __future__ import annotations

import textwrap

import pytest

FLOW = textwrap.dedent('''
    from flow_core import FlowSpec, step


    class DocFlow(FlowSpec):
        """Counts the things that matter."""

        @step
        def start(self):
            """Where counting begins."""
            self.next(self.end)

        @step
        def end(self):
            pass


    if __name__ == "__main__":
        DocFlow()
''')


@pytest.fixture
def flow_file(tmp_path):
    path = tmp_path / "doc_flow.py"
    path.write_text(FLOW)
    return path


def test_a_forwarded_commands_usage_line_is_the_one_the_user_typed(flow_cli, flow_file):
    result = flow_cli("run", str(flow_file), "--help")
    assert result.returncode == 0
    usage = " ".join(result.stdout.split("\n\n", 1)[0].split())  # a long path wraps the line
    assert usage == f"Usage: flow run {flow_file} [OPTIONS]"
    wrong = flow_cli("run", str(flow_file), "--no-such-option")
    assert f"Try 'flow run {flow_file} --help' for help." in wrong.stderr


def test_command_lists_show_whole_sentences(flow_cli, python_flow, flow_file):
    for listing in (flow_cli("--help").stdout, python_flow(flow_file, "--help").stdout):
        commands = listing.split("Commands:", 1)[1].strip().splitlines()
        assert commands and all(line.rstrip().endswith(".") and "..." not in line for line in commands), commands


def test_a_flow_file_run_with_no_command_checks_it_and_lists_the_commands(python_flow, flow_file):
    result = python_flow(flow_file)
    assert result.returncode == 0, result.stderr
    assert "DocFlow: 2 steps, the graph looks good." in result.stdout
    listed = result.stdout.split("Commands:", 1)[1]
    assert all(name in listed for name in ("run", "resume", "show", "dump", "logs"))


def test_show_prints_the_flow_and_step_docstrings(python_flow, flow_file):
    result = python_flow(flow_file, "show")
    assert result.stdout.startswith("Counts the things that matter.\n")
    assert "Where counting begins." in result.stdout


def test_output_dot_version_and_help(python_flow, flow_file):
    dot = python_flow(flow_file, "output-dot")
    assert dot.returncode == 0 and '"start" -> "end";' in dot.stdout and dot.stdout.startswith("digraph DocFlow {")
    version = python_flow(flow_file, "version")
    assert version.returncode == 0 and version.stdout.startswith("flow-core ")
    helped = python_flow(flow_file, "help")
    assert helped.returncode == 0
    assert "Usage: doc_flow.py run [OPTIONS]" in helped.stdout and "Usage: doc_flow.py resume" in helped.stdout


def test_tag_add_remove_replace_and_list_change_what_the_client_sees(python_flow, flow_cli, flow_file):
    from flow_core import Run, namespace
    from flow_core.testing import run_id_of

    run_id = run_id_of(python_flow(flow_file, "run").stdout)
    assert python_flow(flow_file, "tag", "add", "one", "two").stdout.strip() == f"DocFlow/{run_id}: one, two"
    assert python_flow(flow_file, "tag", "remove", "--run-id", run_id, "one").returncode == 0
    assert flow_cli("tag", str(flow_file), "replace", "two", "three").returncode == 0
    assert python_flow(flow_file, "tag", "list").stdout.strip() == f"DocFlow/{run_id}: three"
    namespace(None)
    assert Run(f"DocFlow/{run_id}").user_tags == frozenset({"three"})
    missing = python_flow(flow_file, "tag", "add", "--run-id", "999", "x")
    assert missing.returncode == 1 and missing.stderr.strip().splitlines()[-1].startswith("Error: run DocFlow/999")


def test_with_before_the_command_and_dump_to_a_file(python_flow, tmp_path):
    import pickle

    from flow_core.testing import run_id_of

    path = tmp_path / "flaky_flow.py"
    path.write_text(textwrap.dedent('''
        from flow_core import FlowSpec, current, step


        class FlakyFlow(FlowSpec):
            @step
            def start(self):
                if current.retry_count == 0:
                    raise RuntimeError("the first attempt fails")
                self.answer = 42
                self.next(self.end)

            @step
            def end(self):
                pass


        if __name__ == "__main__":
            FlakyFlow()
    '''))
    result = python_flow(path, "--with", "retry", "run")
    assert result.returncode == 0, result.stderr
    run_id = run_id_of(result.stdout)
    out = tmp_path / "artifacts.pkl"
    dumped = python_flow(path, "dump", f"{run_id}/start", "--file", str(out))
    assert dumped.returncode == 0, dumped.stderr
    (values,) = pickle.loads(out.read_bytes()).values()
    assert values["answer"] == 42


def test_a_with_value_may_hold_commas(python_flow, tmp_path):
    path = tmp_path / "env_flow.py"
    path.write_text(textwrap.dedent('''
        import os
        from flow_core import FlowSpec, step


        class EnvFlow(FlowSpec):
            @step
            def start(self):
                print("A =", os.environ["A"], "B =", os.environ["B"])
                self.next(self.end)

            @step
            def end(self):
                pass


        if __name__ == "__main__":
            EnvFlow()
    '''))
    result = python_flow(path, "run", "--with", "environment:vars={'A': 'x,y', 'B': '2'}")
    assert result.returncode == 0, result.stderr
    assert "A = x,y B = 2" in result.stdout


def test_verbose_shows_the_backends_each_tasks_command_line_and_timing(python_flow, flow_file):
    quiet_enough = python_flow(flow_file, "run")
    verbose = python_flow(flow_file, "--verbose", "run")
    assert verbose.returncode == 0, verbose.stderr
    assert "Datastore " in verbose.stdout and "Datastore " not in quiet_enough.stdout
    assert "-m flow_core step" in verbose.stdout and " start --flow DocFlow " in verbose.stdout
    assert "s from launch to finish" in verbose.stdout
