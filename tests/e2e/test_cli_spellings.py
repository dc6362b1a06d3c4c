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
