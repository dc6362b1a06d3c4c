"""The Runner API: start, resume and deploy flows from Python and notebooks, as Metaflow's
``Runner``, ``NBRunner``, ``Deployer`` and ``NBDeployer``. Every action is the real command line in a
subprocess; results come back through the Client API."""

from flow_core.runner.deployer import DeployedFlow, Deployer, TriggeredRun
from flow_core.runner.nbdeploy import NBDeployer
from flow_core.runner.nbrun import NBRunner
from flow_core.runner.runner import ExecutingRun, Runner

__all__ = ["DeployedFlow", "Deployer", "ExecutingRun", "NBDeployer", "NBRunner", "Runner", "TriggeredRun"]
