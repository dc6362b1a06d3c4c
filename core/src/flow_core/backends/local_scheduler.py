"""The local scheduler: production-style deployments on this machine.

``flow deploy`` records the flow under the local root with a production token; ``flow
trigger`` starts a run of it in the background, in the ``production:<token>`` namespace,
with its console output in a log file beside the deployment. The flow file runs where it
is (no snapshot of the code), which is what a laptop or a single server wants.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from flow_core.backends.scheduler import Deployment, DeployRequest, SchedulerBackend, new_production_token
from flow_core.errors import FlowError, NotFound
from flow_core.plugin.settings import Settings

if TYPE_CHECKING:
    from flow_core.backends.selection import Backends

TRIGGER_WAIT_SECONDS = 60.0


class LocalScheduler(SchedulerBackend):
    name = "local"

    def __init__(self, root: Path, settings: Settings):
        self.folder = root / "deployments"
        self.settings = settings

    @classmethod
    def from_settings(cls, settings: Settings, backends: Backends) -> "LocalScheduler":
        return cls(settings.local_root, settings)

    def _path(self, flow_name: str) -> Path:
        return self.folder / f"{flow_name}.json"

    def _read(self, path: Path) -> Deployment:
        data = json.loads(path.read_text())
        return Deployment(**data)

    def get(self, flow_name: str) -> Deployment:
        path = self._path(flow_name)
        if not path.exists():
            raise NotFound(f"{flow_name} is not deployed to the local scheduler; run `flow deploy FILE` first")
        return self._read(path)

    def deploy(self, request: DeployRequest) -> Deployment:
        name = request.deployed_name or request.flow_name
        path = self._path(name)
        token = self._read(path).production_token if path.exists() else new_production_token(request.flow_name)
        deployment = Deployment(
            flow_name=request.flow_name,
            scheduler=self.name,
            production_token=token,
            flow_file=os.path.abspath(request.flow_file),
            created_at=time.time(),
            schedule=request.schedule,
            details={"tags": list(request.tags), "logs": str(self.folder / name), "name": name,
                     "run_options": list(request.init_options), "timezone": request.schedule_timezone,
                     "environment": request.environment.get("METAFLOW_DEFAULT_ENVIRONMENT")},
        )
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({
            "flow_name": deployment.flow_name, "scheduler": deployment.scheduler,
            "production_token": token, "flow_file": deployment.flow_file,
            "created_at": deployment.created_at, "schedule": deployment.schedule,
            "details": dict(deployment.details),
        }, indent=2))
        os.replace(tmp, path)
        return deployment

    def trigger(self, flow_name: str, parameters: Mapping[str, str] | None = None) -> str:
        deployment = self.get(flow_name)
        logs = self.folder / flow_name
        logs.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        run_id_file = logs / f"{stamp}-{os.getpid()}.run-id"
        chosen = deployment.details.get("environment")  # --environment=pypi given at deploy time
        command = [sys.executable, "-m", "flow_core", *([f"--environment={chosen}"] if chosen else []), "run",
                   deployment.flow_file,
                   "--production-token", deployment.production_token, "--run-id-file", str(run_id_file)]
        for tag in deployment.details.get("tags", []):
            command += ["--tag", tag]
        command += deployment.details.get("run_options", [])  # its @project branch and configs
        for key, value in (parameters or {}).items():
            command += [f"--{key}", str(value)]
        env = {**os.environ, **self.settings.task_environment()}
        with open(logs / f"{stamp}.log", "ab") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       env=env, start_new_session=True)
        deadline = time.time() + TRIGGER_WAIT_SECONDS
        while time.time() < deadline:
            if run_id_file.exists() and run_id_file.read_text().strip():
                return f"{deployment.flow_name}/{run_id_file.read_text().strip()}"
            if process.poll() is not None:
                raise FlowError(f"the triggered run of {flow_name} stopped before starting; see {logs / (stamp + '.log')}")
            time.sleep(0.05)
        raise FlowError(f"the triggered run of {flow_name} did not start within {TRIGGER_WAIT_SECONDS:.0f}s")

    def list_deployments(self) -> list[Deployment]:
        if not self.folder.exists():
            return []
        return [self._read(path) for path in sorted(self.folder.glob("*.json"))]

    def delete(self, flow_name: str) -> None:
        self.get(flow_name)
        self._path(flow_name).unlink()
