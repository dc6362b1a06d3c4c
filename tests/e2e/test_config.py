"""Config and config_expr: a flow's configuration, fixed at the start of a run, readable in
steps and in decorator arguments, and stored with the run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from flow_core.testing import last_error, run_id_of

CONFIGURED = """
    import os
    from flow_core import Config, FlowSpec, config_expr, current, environment, project, resources, step

    def upper(text):
        return {"label": text.strip().upper()}

    @project(name=config_expr("cfg.project"))
    class TrainFlow(FlowSpec):
        cfg = Config("cfg", default="cfg.json")
        extra = Config("extra", default_value={"size": 3}, parser=upper)

        @environment(vars={"MODEL": cfg.model.kind})  # a config read in the class body is delayed too
        @resources(cpu=config_expr("cfg.cpu"))
        @step
        def start(self):
            print("seen:", self.cfg.model.kind, self.cfg["cpu"], os.environ["MODEL"], current.project_name,
                  self.extra.get("size", self.extra.get("label")))
            try:
                self.cfg["cpu"] = 9
            except TypeError as exc:
                print("immutable:", exc)
            try:
                self.cfg = {}
            except AttributeError:
                print("read-only config")
            self.next(self.end)

        @step
        def end(self):
            print("end sees", self.cfg.model.kind, dict(self.cfg.model))

    if __name__ == "__main__":
        TrainFlow()
"""

DEFAULT = {"project": "vision", "cpu": 1, "model": {"kind": "cnn"}}


@pytest.fixture
def python_flow(flow_env, tmp_path):
    """``python train.py …`` from the flow's folder, where its default config file is."""

    def run(flow_file, *args: str, cwd=None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(flow_file), *args], env={**os.environ, **flow_env},
                              cwd=cwd or tmp_path, capture_output=True, text=True, timeout=300)

    return run


@pytest.fixture
def flow_file(write_flow, tmp_path):
    (tmp_path / "cfg.json").write_text(json.dumps(DEFAULT))
    return write_flow("train.py", CONFIGURED)


def _seen(stdout: str) -> str:
    return next(line.split("seen: ", 1)[1] for line in stdout.splitlines() if "seen: " in line)


def _config_artifact(run_id: str, name: str = "cfg"):
    from flow_core import Run, namespace

    namespace(None)
    return Run(f"TrainFlow/{run_id}")["start"].task[name].data


def test_default_file_reaches_steps_decorators_and_the_client(flow_file, python_flow, tmp_path):
    result = python_flow(flow_file, "run")
    assert result.returncode == 0, result.stderr
    assert _seen(result.stdout) == "cnn 1 cnn vision 3"
    assert "immutable: ConfigValue is immutable" in result.stdout
    assert "read-only config" in result.stdout
    assert "end sees cnn {'kind': 'cnn'}" in result.stdout
    assert _config_artifact(run_id_of(result.stdout)) == DEFAULT


def test_config_file_and_value_on_the_command_line(flow_file, python_flow, flow_cli, tmp_path):
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"project": "audio", "cpu": 2, "model": {"kind": "rnn"}}))
    # Top-level, as Metaflow users type it ...
    result = python_flow(flow_file, "--config", "cfg", str(other), "run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert _seen(result.stdout) == "rnn 2 rnn audio 3"
    # ... and after the command, with a parser turning text into the config.
    value = json.dumps({"project": "text", "cpu": 1, "model": {"kind": "bert"}})
    result = flow_cli("run", str(flow_file), "--config-value", "cfg", value, "--config-value", "extra", "big",
                      cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert _seen(result.stdout) == "bert 1 bert text BIG"
    assert _config_artifact(run_id_of(result.stdout), "extra") == {"label": "BIG"}


def test_resume_keeps_the_origin_runs_configs(flow_file, python_flow, tmp_path):
    first = python_flow(flow_file, "run", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    (tmp_path / "cfg.json").write_text(json.dumps({"project": "changed", "cpu": 1, "model": {"kind": "mlp"}}))
    resumed = python_flow(flow_file, "resume", "start", "--origin-run-id", run_id_of(first.stdout), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert _seen(resumed.stdout) == "cnn 1 cnn vision 3"
    assert _config_artifact(run_id_of(resumed.stdout)) == DEFAULT


@pytest.mark.parametrize("args, message", [
    (["--config", "nope", "x.json"], "the flow has no config named 'nope' (it has: cfg, extra)"),
    (["--config-value", "cfg", "{oops"], "config 'cfg' from --config-value: it is not valid JSON"),
    (["--config-value", "cfg", "[1, 2]"], "config 'cfg' from --config-value must be a mapping"),
    (["--config", "cfg", "/no/such.json"], "config 'cfg': cannot read /no/such.json"),
])
def test_config_mistakes_are_reported_before_anything_runs(flow_file, python_flow, tmp_path, args, message):
    result = python_flow(flow_file, *args, "run", cwd=tmp_path)
    assert result.returncode != 0
    assert message in last_error(result), result.stderr
    assert "Workflow starting" not in result.stdout and "Traceback" not in result.stderr


def test_a_required_config_must_be_given(write_flow, python_flow, tmp_path):
    source = CONFIGURED.replace('Config("cfg", default="cfg.json")', 'Config("cfg", required=True)')
    result = python_flow(write_flow("train.py", source), "run", cwd=tmp_path)
    assert result.returncode != 0
    assert "config 'cfg' is required" in last_error(result)
