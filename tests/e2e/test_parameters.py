"""Parameters and IncludeFile: typed, validated, stored with the run, read-only in steps."""

from __future__ import annotations

from flow_core.testing import last_error, run_id_of

TRAIN = """
    from flow_core import FlowSpec, IncludeFile, JSONType, Parameter, step, current

    class Train(FlowSpec):
        alpha = Parameter("alpha", default=0.01, type=float, help="Learning rate.")
        epochs = Parameter("epochs", default=3, help="Passes over the data.")
        config = Parameter("model-config", default='{"depth": 2}', type=JSONType, help="Model settings.")
        dataset = Parameter("dataset", required=True, help="Which data to train on.")
        notes = IncludeFile("notes", default=None, help="A text file stored with the run.")

        @step
        def start(self):
            self.seen = (self.alpha, self.epochs, self.config, self.dataset, self.notes)
            self.names = current.parameter_names
            self.next(self.end)

        @step
        def end(self):
            print("alpha is", self.alpha)
            if self.dataset == "overwrite":
                self.alpha = 1.0
"""


def test_values_are_typed_and_reach_every_step(write_flow, flow_cli, records, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("trained on tuesday")
    result = flow_cli("run", str(write_flow("train.py", TRAIN)), "--alpha", "0.5", "--model-config",
                      '{"depth": 7, "leaves": [1, 2]}', "--dataset", "iris", "--notes", str(notes))
    assert result.returncode == 0, result.stderr
    run_id = run_id_of(result.stdout)
    assert "alpha is 0.5" in result.stdout
    assert records.artifact("Train", run_id, "start", "seen") == (
        0.5, 3, {"depth": 7, "leaves": [1, 2]}, "iris", "trained on tuesday")
    assert set(records.artifact("Train", run_id, "start", "names")) == {"alpha", "epochs", "config", "dataset", "notes"}
    notes.write_text("changed later")  # the run keeps what it read at launch
    assert records.artifact("Train", run_id, "end", "notes") == "trained on tuesday"


def test_defaults_apply_when_not_given(write_flow, flow_cli, records):
    result = flow_cli("run", str(write_flow("train.py", TRAIN)), "--dataset", "iris")
    assert result.returncode == 0, result.stderr
    seen = records.artifact("Train", run_id_of(result.stdout), "start", "seen")
    assert seen == (0.01, 3, {"depth": 2}, "iris", None)


def test_help_lists_parameters_with_dashes_and_help_text(write_flow, flow_cli):
    result = flow_cli("run", str(write_flow("train.py", TRAIN)), "--help")
    assert result.returncode == 0
    for expected in ("--alpha", "Learning rate.", "--model-config", "Model settings.", "--dataset", "--notes"):
        assert expected in result.stdout


def test_bad_values_are_rejected_before_anything_runs(write_flow, flow_cli, flow_env):
    path = write_flow("train.py", TRAIN)
    cases = [
        (["--dataset", "iris", "--alpha", "fast"], "Invalid value for '--alpha': 'fast' is not a valid float"),
        (["--dataset", "iris", "--model-config", "{oops"], "Invalid value for '--model-config': '{oops' is not valid JSON"),
        ([], "parameter --dataset is required"),
        (["--dataset", "iris", "--notes", "/no/such/file.txt"], "parameter --notes: cannot read /no/such/file.txt"),
    ]
    for args, message in cases:
        result = flow_cli("run", str(path), *args)
        assert result.returncode != 0
        assert message in last_error(result), result.stderr
        assert "Traceback" not in result.stderr and "Workflow starting" not in result.stdout
    assert not (flow_env.root / "flows" / "Train").exists()


def test_parameters_are_read_only(write_flow, flow_cli):
    result = flow_cli("run", str(write_flow("train.py", TRAIN)), "--dataset", "overwrite")
    assert result.returncode == 1
    assert "parameter 'alpha' is read-only" in last_error(result)
