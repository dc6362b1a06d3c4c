"""Metaflow's own tutorials run on Flow with only their imports changed.

The tutorials ship inside Metaflow's package, so they are taken from the Metaflow installed from
PyPI into a virtualenv of its own (scripts/metaflow_venv.py), copied to a temporary folder with
``from metaflow import`` turned into ``from flow_core import``, and run with Flow; their notebooks
run as scripts against those runs. The statistics tutorial also runs on Metaflow itself, and both
must compute the same figures; 08-autopilot's notebook follows a run of it on the local scheduler.
"""

from __future__ import annotations

import ast
import json
import os
import re
import runpy
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from flow_core.testing import run_id_of

_HELPER = Path(__file__).resolve().parents[2] / "scripts" / "metaflow_venv.py"
METAFLOW = "metaflow==2.19.39"
FLOW_TUTORIALS = ("00-helloworld", "01-playlist", "02-statistics", "03-playlist-redux")

#: What the statistics notebooks compute from the run, printed the same way on both frameworks.
TOP_GENRES = """
run = Flow('MovieStatsFlow').latest_successful_run
stats = run.data.genre_stats
medians = sorted(((genre, data['quartiles'][1]) for genre, data in stats.items()), key=lambda pair: pair[1])
print(json.dumps(medians[-5:]))
"""


@pytest.fixture(scope="module")
def metaflow_python(request, tmp_path_factory) -> str:
    cache = getattr(request.config, "cache", None)
    # Without pytest's cache, one folder of the session's own: both test modules that need
    # Metaflow then install it once, as they do with the cache.
    venv = (cache.mkdir("metaflow-venv") if cache else tmp_path_factory.getbasetemp() / "metaflow-venv") / METAFLOW
    return runpy.run_path(str(_HELPER))["metaflow_python"](venv, [METAFLOW])


@pytest.fixture(scope="module")
def tutorials(metaflow_python) -> Path:
    found = subprocess.run([metaflow_python, "-c", "import metaflow, os; print(os.path.dirname(metaflow.__file__))"],
                           capture_output=True, text=True, check=True)
    return Path(found.stdout.strip()) / "tutorials"


@pytest.fixture
def converted(tutorials, tmp_path) -> Path:
    """The tutorials with their imports changed, and nothing else — but for 05-hello-cloud,
    whose ``@kubernetes`` is a cloud-only decorator Flow does not have: only that decorator's
    line (and its name in the import) is left out, so its ``hello`` step runs locally, still
    with ``@retry``."""
    for name in (*FLOW_TUTORIALS, "05-hello-cloud"):
        shutil.copytree(tutorials / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        for script in (tmp_path / name).glob("*.py"):
            script.write_text(script.read_text().replace("from metaflow import", "from flow_core import"))
    hello_cloud = tmp_path / "05-hello-cloud" / "hello-cloud.py"
    source = hello_cloud.read_text()
    without = re.sub(r"^ *@kubernetes\(.*\)\n", "", source, flags=re.M).replace(" kubernetes,", "")
    assert without.count("\n") == source.count("\n") - 1 and "kubernetes(" not in without
    hello_cloud.write_text(without)
    return tmp_path


def notebook_code(path: Path) -> str:
    """A notebook's code cells as one script, with its imports changed and the plotting lines
    left out (there is no display to draw on; what a plot would show, a test prints)."""
    cells = ["".join(cell["source"]) for cell in json.loads(path.read_text())["cells"] if cell["cell_type"] == "code"]
    code = "\n".join(cells).replace("from metaflow import", "from flow_core import")
    return re.sub(r"^(import matplotlib.*|plt\..*)$", "", code, flags=re.M)


def _notebook(python: str, code: str, cwd: Path, name: str) -> subprocess.CompletedProcess:
    """Run a notebook's code as a script (a fresh kernel for each notebook)."""
    script = cwd / f"{name}.py"
    script.write_text(code)
    return _run(python, str(script), cwd=cwd)


def _run(python: str, script: str, *args: str, cwd: Path, env: dict[str, str] | None = None):
    return subprocess.run([python, script, *args], cwd=cwd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


def test_the_tutorials_and_their_notebooks_run_on_flow_with_only_their_imports_changed(converted, flow_env,
                                                                                       tutorials):
    """Each flow runs, then the notebook that reads it (a fresh script each, as a fresh kernel)."""
    hello = _run(sys.executable, "helloworld.py", "run", cwd=converted / "00-helloworld")
    assert hello.returncode == 0, hello.stderr
    assert "HelloFlow is all done." in hello.stdout

    playlist = _run(sys.executable, "playlist.py", "run", "--genre", "comedy", cwd=converted / "01-playlist")
    assert playlist.returncode == 0, playlist.stderr
    assert all(f"Pick {n}: '" in playlist.stdout for n in range(1, 6)) and "Bonus Pick: '" in playlist.stdout
    # 01's notebook, before 03 makes another PlayListFlow run.
    notebook = _notebook(sys.executable, notebook_code(tutorials / "01-playlist" / "playlist.ipynb"), converted,
                         "playlist_notebook")
    assert notebook.returncode == 0, notebook.stderr
    out = notebook.stdout
    assert f"Current metadata provider: local@{flow_env.root}" in out
    assert f"\nUsing run: Run('PlayListFlow/{run_id_of(playlist.stdout)}')\n" in out
    assert re.search(r"^Playlist generated on \d{4}-\d\d-\d\d \d\d:\d\d", out, re.M), out
    assert out.count("Playlist for movies in genre 'comedy'") == 2  # the latest run, then every run
    # The notebook's picks are the ones the run printed (after its tasks' prefixes).
    picks = re.findall(r"(Pick \d: '.*')$", playlist.stdout, re.M)
    assert len(picks) == 5 and "\n".join(picks) in out
    bonus = re.search(r"Bonus Pick: '.*' from '.*'$", playlist.stdout, re.M)
    assert bonus and f"\n{bonus.group(0)}\n" in out
    assert f"\nTop {picks[0].replace('Pick 1', 'Pick')}\n" in out

    stats = _run(sys.executable, "stats.py", "run", cwd=converted / "02-statistics")
    assert stats.returncode == 0, stats.stderr
    # 02's notebook, with the bars of its plot printed instead of drawn.
    code = notebook_code(tutorials / "02-statistics" / "stats.ipynb") + "\nprint('BARS', list(genre[-5:]))\n"
    notebook = _notebook(sys.executable, code, converted, "statistics_notebook")
    assert notebook.returncode == 0, notebook.stderr
    assert f"\nUsing run: Run('MovieStatsFlow/{run_id_of(stats.stdout)}')\n" in notebook.stdout
    top = subprocess.run([sys.executable, "-c", "import json\nfrom flow_core import Flow\n" + TOP_GENRES],
                         capture_output=True, text=True, check=True).stdout
    assert notebook.stdout.split("BARS ", 1)[1].strip() == str([genre for genre, _ in json.loads(top)])

    # 03 reads 02's results through the Client API from inside its own steps.
    redux = _run(sys.executable, "playlist.py", "run", cwd=converted / "03-playlist-redux")
    assert redux.returncode == 0, redux.stderr
    assert "Playlist for movies in genre 'Sci-Fi'" in redux.stdout and "Pick 5: '" in redux.stdout

    # 05 without its @kubernetes (see `converted`), then its notebook.
    hello_cloud = _run(sys.executable, "hello-cloud.py", "run", cwd=converted / "05-hello-cloud")
    assert hello_cloud.returncode == 0, hello_cloud.stderr
    assert "Metaflow says: Hi from the cloud!" in hello_cloud.stdout and "HelloCloud is finished." in hello_cloud.stdout
    notebook = _notebook(sys.executable, notebook_code(tutorials / "05-hello-cloud" / "hello-cloud.ipynb"), converted,
                         "hello_cloud_notebook")
    assert notebook.returncode == 0, notebook.stderr
    assert f"\nUsing run: Run('HelloCloudFlow/{run_id_of(hello_cloud.stdout)}')\nHi from the cloud!\n" in \
        notebook.stdout

    # The notebook of 06 (statistics, redux), read through Flow's client.
    notebook = _notebook(sys.executable, notebook_code(tutorials / "06-statistics-redux" / "stats.ipynb"), converted,
                         "statistics_redux_notebook")
    assert notebook.returncode == 0, notebook.stderr
    assert "Using run: Run('MovieStatsFlow/" in notebook.stdout
    assert "The best movie ever made:\nMetaflow the Release,2019,Documentary,0" in notebook.stdout

    # 07 (worldview) in full: every flow's latest run, then HelloCloudFlow's runs and their tags.
    notebook = _notebook(sys.executable, notebook_code(tutorials / "07-worldview" / "worldview.ipynb"), converted,
                         "worldview_notebook")
    assert notebook.returncode == 0, notebook.stderr
    out = notebook.stdout
    for flow in ("HelloFlow", "HelloCloudFlow", "MovieStatsFlow", "PlayListFlow"):
        assert re.search(rf"^{flow} +Last run: \d{{4}}-.* Successful: True$", out, re.M), out
    listed = out.split("\nHelloCloudFlow:\n", 1)[1]
    assert listed.startswith(f"Run id: {run_id_of(hello_cloud.stdout)}, Successful: True\nTags: ['"), out
    tags = ast.literal_eval(re.search(r"^Tags: (\[.*\])$", listed, re.M).group(1))
    assert tags == sorted(tags) and {"user:tester", "runtime:local"} <= set(tags)


def test_the_autopilot_notebook_follows_a_run_of_the_deployed_statistics_flow(converted, flow_env, tutorials):
    """08-autopilot's local part: Metaflow's README deploys 02's stats.py with ``argo-workflows
    create`` and triggers it; Flow's local scheduler does the same with ``deploy`` and ``trigger``."""
    from flow_core import Run

    folder = converted / "02-statistics"
    deployed = _run(sys.executable, "stats.py", "deploy", cwd=folder)
    assert deployed.returncode == 0, deployed.stderr
    assert "Deployed MovieStatsFlow to the local scheduler" in deployed.stdout + deployed.stderr
    triggered = _run(sys.executable, "stats.py", "trigger", cwd=folder)
    assert triggered.returncode == 0, triggered.stderr
    found = re.search(r"Triggered MovieStatsFlow/(\S+) on the local scheduler\.", triggered.stdout + triggered.stderr)
    assert found, triggered.stdout + triggered.stderr
    run_id = found.group(1)
    deadline = time.monotonic() + 300
    while not (run := Run(f"MovieStatsFlow/{run_id}", _namespace_check=False)).finished_at:
        assert time.monotonic() < deadline, f"the triggered run {run_id} did not finish"
        time.sleep(0.5)
    assert run.successful

    code = notebook_code(tutorials / "08-autopilot" / "autopilot.ipynb")
    code, pasted = re.subn(r"^run_id = '.*'$", f"run_id = {run_id!r}", code, flags=re.M)
    assert pasted == 1
    # plotly is not installed: the Gantt chart's lines go; the rows it would draw are printed.
    code = re.sub(r"^import plotly.*$", "", code, flags=re.M)
    code, charts = re.subn(r"^fig = ff\.create_gantt\(.*?\)\n|^fig\.show\(\)$", "", code, flags=re.M | re.S)
    assert charts == 2
    code += ("\nfor row in step_data:\n"
             "    print('ROW', row['Task'], row['Start'].isoformat(), row['Finish'].isoformat())\n")
    notebook = _notebook(sys.executable, code, converted, "autopilot_notebook")
    assert notebook.returncode == 0, notebook.stderr
    out = notebook.stdout
    assert f"Current metadata provider: local@{flow_env.root}" in out
    assert "might not have started yet" not in out
    rows = [line.split()[1:] for line in out.splitlines() if line.startswith("ROW ")]
    assert sorted(row[0] for row in rows) == sorted(["start", "compute_statistics", "join", "end"])
    assert all(start <= finish for _, start, finish in rows), rows
    steps = {row[0]: row for row in rows}
    assert steps["start"][2] <= steps["compute_statistics"][1] and steps["join"][2] <= steps["end"][1]


def test_the_statistics_tutorial_computes_what_metaflow_computes(converted, flow_env, tutorials, metaflow_python,
                                                                 tmp_path):
    on_flow = _run(sys.executable, "stats.py", "run", cwd=converted / "02-statistics")
    assert on_flow.returncode == 0, on_flow.stderr
    flow_figures = subprocess.run(
        [sys.executable, "-c", "import json\nfrom flow_core import Flow\n" + TOP_GENRES],
        capture_output=True, text=True, check=True).stdout

    metaflow_dir = tmp_path / "metaflow"
    shutil.copytree(tutorials / "02-statistics", metaflow_dir, ignore=shutil.ignore_patterns("__pycache__"))
    metaflow_env = {"METAFLOW_DATASTORE_SYSROOT_LOCAL": str(metaflow_dir / ".metaflow-root"),
                    "METAFLOW_HOME": str(metaflow_dir / "home"), "USERNAME": "tester", "METAFLOW_USER": "tester"}
    on_metaflow = _run(metaflow_python, "stats.py", "run", cwd=metaflow_dir, env=metaflow_env)
    assert on_metaflow.returncode == 0, on_metaflow.stderr
    metaflow_figures = subprocess.run(
        [metaflow_python, "-c", "import json\nfrom metaflow import Flow\n" + TOP_GENRES],
        capture_output=True, text=True, check=True, cwd=metaflow_dir, env={**os.environ, **metaflow_env}).stdout

    assert json.loads(flow_figures) == json.loads(metaflow_figures)
    assert len(json.loads(flow_figures)) == 5
