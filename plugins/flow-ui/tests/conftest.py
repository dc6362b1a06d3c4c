"""Real runs in a private folder, made once per session, and ``flow ui`` serving them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

FLOWS = {
    "shapes.py": '''
        from flow_core import FlowSpec, card, current, step
        from flow_core.cards import Markdown

        PNG = bytes.fromhex(
            "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
            "1f15c4890000000d49444154789c6360f8cfc0000003010100c9fe92ef0000000049454e44ae426082")

        class ShapesFlow(FlowSpec):
            @step
            def start(self):
                print("starting the shapes")
                self.items = ["x", "y", "z"]
                self.next(self.left, self.right)

            @step
            def left(self):
                self.side = "left"
                self.next(self.meet)

            @step
            def right(self):
                self.side = "right"
                self.next(self.meet)

            @step
            def meet(self, inputs):
                self.sides = sorted(i.side for i in inputs)
                self.items = inputs.left.items
                self.next(self.fan)

            @step
            def fan(self):
                self.next(self.each, foreach="items")

            @step
            def each(self):
                print(f"working on item {self.input}")
                self.word = self.input * 3
                self.next(self.gather)

            @step
            def gather(self, inputs):
                self.words = [i.word for i in inputs]
                self.next(self.end)

            @card(type="blank", id="summary")
            @step
            def end(self):
                current.card.append(Markdown("# The shapes are done"))
                import numpy
                import pandas
                self.scores = pandas.DataFrame({"model": ["tree", "forest"], "accuracy": [0.81, 0.87]})
                self.config = {"alpha": 0.5, "layers": [64, 32]}
                self.matrix = numpy.zeros((3, 4), dtype="float32")
                self.picture = PNG
                print("the shapes are done")

        if __name__ == "__main__":
            ShapesFlow()
    ''',
    "broken.py": '''
        from flow_core import FlowSpec, retry, step

        class BrokenFlow(FlowSpec):
            name = "always"

            @step
            def start(self):
                self.next(self.explode)

            @retry(times=1, minutes_between_retries=0)
            @step
            def explode(self):
                print("about to fail")
                if self.name:
                    raise ValueError("the answer is not 41")
                self.next(self.end)

            @step
            def end(self):
                pass

        if __name__ == "__main__":
            BrokenFlow()
    ''',
    "held.py": '''
        import os, time
        from flow_core import FlowSpec, Parameter, step

        class HeldFlow(FlowSpec):
            release = Parameter("release", default="")

            @step
            def start(self):
                self.next(self.hold)

            @step
            def hold(self):
                print("holding until released")
                spoke = False
                while not os.path.exists(self.release):
                    if not spoke and os.path.exists(self.release + ".speak"):
                        print("heard the signal to speak")
                        spoke = True
                    time.sleep(0.1)
                self.next(self.end)

            @step
            def end(self):
                pass

        if __name__ == "__main__":
            HeldFlow()
    ''',
}


class UIEnv:
    """A folder of runs and the environment that points Flow at it."""

    def __init__(self, root: Path):
        self.root = root
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("METAFLOW_")}
        self.env.update(METAFLOW_DATASTORE_SYSROOT_LOCAL=str(root / "flow-root"),
                        METAFLOW_HOME=str(root / "metaflowconfig"), METAFLOW_USER="tester")
        for name, source in FLOWS.items():
            (root / name).write_text(textwrap.dedent(source).lstrip())

    def flow(self, *args: str, user: str = "tester", check: bool = True) -> str:
        """Run ``flow ARGS`` to the end; the run id it announced."""
        env = {**self.env, "METAFLOW_USER": user}
        result = subprocess.run([sys.executable, "-m", "flow_core", *args], cwd=self.root, env=env,
                                capture_output=True, text=True, timeout=300)
        if check and result.returncode != 0:
            raise AssertionError(f"flow {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        match = re.search(r"run-id (\S+?)\)", result.stdout + result.stderr)
        assert match, result.stdout + result.stderr
        return match.group(1)


class UIServer:
    """``flow ui --port 0`` as a subprocess; ``get(path)`` returns (status, body)."""

    def __init__(self, ui_env: UIEnv):
        self.process = subprocess.Popen([sys.executable, "-m", "flow_core", "ui", "--port", "0"], cwd=ui_env.root,
                                        env=ui_env.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.process.stderr.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert match, f"flow ui did not say where it serves: {line!r}"
        self.banner = line
        self.url = f"http://127.0.0.1:{match.group(1)}"

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=30) as response:
                return response.status, response.read().decode("utf-8")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode("utf-8")

    def json(self, path: str) -> dict:
        status, body = self.get(path)
        assert status == 200, body
        return json.loads(body)

    def stop(self) -> str:
        self.process.terminate()
        _, err = self.process.communicate(timeout=30)
        return err


@pytest.fixture(scope="session")
def ui_env(tmp_path_factory) -> UIEnv:
    return UIEnv(tmp_path_factory.mktemp("ui"))


@pytest.fixture(scope="session")
def runs(ui_env: UIEnv) -> dict[str, str]:
    """The runs every test reads: two users' shapes, a tagged one, and a failing one."""
    made = {"shapes": ui_env.flow("run", "shapes.py", "--max-workers", "2"),
            "broken": ui_env.flow("run", "broken.py", check=False),
            "other": ui_env.flow("run", "shapes.py", "--tag", "nightly", user="ana")}
    made["resumed"] = ui_env.flow("resume", "broken.py", "--origin-run-id", made["broken"], check=False)
    return made


@pytest.fixture(scope="session")
def ui(ui_env: UIEnv, runs) -> UIServer:
    server = UIServer(ui_env)
    yield server
    err = server.stop()
    assert "Traceback" not in err, err


def wait_for(condition, timeout: float = 60.0, what: str = "the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@contextmanager
def held_run(ui_env: UIEnv, ui: UIServer, release: Path) -> Iterator[dict]:
    """A HeldFlow run, running (its summary given) until the block ends, which releases it."""
    process = subprocess.Popen([sys.executable, "-m", "flow_core", "run", "held.py", "--release", str(release)],
                               cwd=ui_env.root, env=ui_env.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield wait_for(lambda: next((r for r in ui.json("/api/runs?flow=HeldFlow&status=running")["runs"]), None),
                       what="the held run")
    finally:
        release.write_text("go")
        process.wait(timeout=120)


from flow_ui.testing import browser_page  # noqa: E402,F401  (the browser fixture)
