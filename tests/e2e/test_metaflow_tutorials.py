"""Metaflow's own tutorials run on Flow with only their imports changed.

The tutorials ship inside Metaflow's package, so they are taken from the Metaflow installed from
PyPI into a virtualenv of its own (scripts/metaflow_venv.py), copied to a temporary folder with
``from metaflow import`` turned into ``from flow_core import``, and run with Flow. The statistics
tutorial also runs on Metaflow itself, and both must compute the same figures.
"""

from __future__ import annotations

import json
import os
import re
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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
    venv = (cache.mkdir("metaflow-venv") if cache else tmp_path_factory.mktemp("metaflow-venv")) / METAFLOW
    return runpy.run_path(str(_HELPER))["metaflow_python"](venv, [METAFLOW])


@pytest.fixture(scope="module")
def tutorials(metaflow_python) -> Path:
    found = subprocess.run([metaflow_python, "-c", "import metaflow, os; print(os.path.dirname(metaflow.__file__))"],
                           capture_output=True, text=True, check=True)
    return Path(found.stdout.strip()) / "tutorials"


@pytest.fixture
def converted(tutorials, tmp_path) -> Path:
    """The tutorials with their imports changed, and nothing else."""
    for name in FLOW_TUTORIALS:
        shutil.copytree(tutorials / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        for script in (tmp_path / name).glob("*.py"):
            script.write_text(script.read_text().replace("from metaflow import", "from flow_core import"))
    return tmp_path


def notebook_code(path: Path) -> str:
    """A notebook's code cells as one script, with its imports changed and the plotting left out
    (there is no display to draw on)."""
    cells = ["".join(cell["source"]) for cell in json.loads(path.read_text())["cells"] if cell["cell_type"] == "code"]
    code = "\n".join(cell for cell in cells if "plt." not in cell)
    code = code.replace("from metaflow import", "from flow_core import")
    return re.sub(r"^import matplotlib.*$", "", code, flags=re.M)


def _run(python: str, script: str, *args: str, cwd: Path, env: dict[str, str] | None = None):
    return subprocess.run([python, script, *args], cwd=cwd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


def test_the_tutorials_run_on_flow_with_only_their_imports_changed(converted, flow_env, tutorials):
    hello = _run(sys.executable, "helloworld.py", "run", cwd=converted / "00-helloworld")
    assert hello.returncode == 0, hello.stderr
    assert "HelloFlow is all done." in hello.stdout

    playlist = _run(sys.executable, "playlist.py", "run", "--genre", "comedy", cwd=converted / "01-playlist")
    assert playlist.returncode == 0, playlist.stderr
    assert all(f"Pick {n}: '" in playlist.stdout for n in range(1, 6)) and "Bonus Pick: '" in playlist.stdout

    stats = _run(sys.executable, "stats.py", "run", cwd=converted / "02-statistics")
    assert stats.returncode == 0, stats.stderr

    # 03 reads 02's results through the Client API from inside its own steps.
    redux = _run(sys.executable, "playlist.py", "run", cwd=converted / "03-playlist-redux")
    assert redux.returncode == 0, redux.stderr
    assert "Playlist for movies in genre 'Sci-Fi'" in redux.stdout and "Pick 5: '" in redux.stdout

    # The notebooks of 06 (statistics, redux) and 07 (worldview), read through Flow's client.
    script = converted / "notebooks.py"
    script.write_text(notebook_code(tutorials / "06-statistics-redux" / "stats.ipynb") + "\n"
                      + notebook_code(tutorials / "07-worldview" / "worldview.ipynb").split("import time")[0])
    notebooks = _run(sys.executable, str(script), cwd=converted)
    assert notebooks.returncode == 0, notebooks.stderr
    assert "Using run: Run('MovieStatsFlow/" in notebooks.stdout
    assert "The best movie ever made:\nMetaflow the Release,2019,Documentary,0" in notebooks.stdout
    for flow in ("HelloFlow", "MovieStatsFlow", "PlayListFlow"):
        assert re.search(rf"^{flow} +Last run: .* Successful: True$", notebooks.stdout, re.M), notebooks.stdout


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
