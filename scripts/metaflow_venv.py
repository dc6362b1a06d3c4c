"""A virtualenv holding Metaflow from PyPI, apart from Flow's own environment.

Flow's environment must never contain Metaflow: a half-converted flow would then import it
silently and write to Metaflow's datastore. The benchmarks (benchmarks/run.py) and the
compatibility tests (plugins/flow-metadata-service/tests/test_metaflow_client.py) run Metaflow
code with the Python this module returns, in a subprocess. Load it by path:

    metaflow_python = runpy.run_path("scripts/metaflow_venv.py")["metaflow_python"]
"""

from __future__ import annotations

import fcntl
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path


def metaflow_python(venv: Path, requirements: Sequence[str]) -> str:
    """The Python of ``venv``, created and given ``requirements`` on first use or when they
    change. pip rather than uv, so that Metaflow's modules are compiled on install as a user's
    would be (the benchmarks time imports). A lock keeps concurrent test sessions from
    installing into the same folder at once."""
    venv = Path(venv)
    python = venv / "bin" / "python"
    marker = venv / "flow-requirements.txt"
    wanted = "\n".join(requirements)
    venv.mkdir(parents=True, exist_ok=True)  # `python -m venv` fills an existing folder
    with open(venv / "flow-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if python.exists() and marker.exists() and marker.read_text() == wanted:
            return str(python)
        print(f"Installing {', '.join(requirements)} from PyPI into {venv} ...", flush=True)
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *requirements],
                       check=True)
        marker.write_text(wanted)
    return str(python)
