"""Real servers for testing Batch tasks on one machine, all on 127.0.0.1.

`MotoServer` is moto in server mode (Batch, CloudWatch Logs, IAM), `DockerEngine` a
``dockerd`` of the tests' own in which moto runs each job's container, and `TaskImage` the
container image those jobs use: a minimal Debian with Python and the task's third-party
libraries, and no Flow code, which jobs fetch from the datastore as a real job would. They
need the test extras of this package (moto, docker) and, for the engine, root with Debian's
``docker.io`` and ``debootstrap``.
"""

from .docker_engine import DockerEngine, shared_docker_engine
from .moto_server import MotoServer, create_job_queue
from .task_image import TaskImage

__all__ = ["DockerEngine", "MotoServer", "TaskImage", "create_job_queue", "shared_docker_engine"]
