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


LISTS = """
    from flow_core import FlowSpec, IncludeFile, Parameter, step

    class Lists(FlowSpec):
        tags = Parameter("tags", separator=",", default="a,b")
        learning_rate = Parameter("learning-rate", default=0.1)
        notes = IncludeFile("notes", default=None)
        LIMIT = 10

        @step
        def start(self):
            print("seen:", self.tags, self.learning_rate, self.notes)
            for name in ("tags", "LIMIT"):
                try:
                    setattr(self, name, 1)
                except AttributeError as exc:  # Metaflow users catch this
                    print(f"caught {name}:", exc)
            self.next(self.end)

        @step
        def end(self):
            print("limit", self.LIMIT)
"""


def test_separator_splits_the_value_into_strings(write_flow, flow_cli, records):
    path = write_flow("lists.py", LISTS)
    result = flow_cli("run", str(path), "--tags", "x,y,z")
    assert result.returncode == 0, result.stderr
    assert "seen: ['x', 'y', 'z'] 0.1 None" in result.stdout
    result = flow_cli("run", str(path))
    assert "seen: ['a', 'b'] 0.1 None" in result.stdout


def test_separator_is_only_for_strings(write_flow, flow_cli):
    source = LISTS.replace('separator=",", default="a,b"', 'separator=",", default=3')
    result = flow_cli("run", str(write_flow("lists.py", source)))
    assert result.returncode != 0
    assert "parameter 'tags': separator is only allowed for string parameters" in last_error(result)


def test_values_come_from_metaflow_run_variables(write_flow, flow_cli, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("from the environment")
    env = {"METAFLOW_RUN_TAGS": "p,q", "METAFLOW_RUN_LEARNING_RATE": "0.5", "METAFLOW_RUN_NOTES": str(notes)}
    result = flow_cli("run", str(write_flow("lists.py", LISTS)), env=env)
    assert result.returncode == 0, result.stderr
    assert "seen: ['p', 'q'] 0.5 from the environment" in result.stdout
    # The command line wins over the environment.
    result = flow_cli("run", str(write_flow("lists.py", LISTS)), "--learning-rate", "0.7", env=env)
    assert "seen: ['p', 'q'] 0.7 from the environment" in result.stdout


def test_assigning_a_parameter_or_constant_is_an_attribute_error(write_flow, flow_cli):
    result = flow_cli("run", str(write_flow("lists.py", LISTS)))
    assert result.returncode == 0, result.stderr
    assert "caught tags: parameter 'tags' is read-only" in result.stdout
    assert "caught LIMIT: 'LIMIT' is a class-level constant of the flow and cannot be changed" in result.stdout
    assert "limit 10" in result.stdout
