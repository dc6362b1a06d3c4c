"""The first thing every Batch job runs: fetch the run's code package, unpack it, run the task.

It runs in the job's container before Flow is importable, so it is one self-contained
script (its source is the job's ``python3 -c`` argument) that needs only the standard
library, and boto3 to read S3. Arguments::

    <s3 url of the package> <its sha256> <requirements as JSON> [--env NAME VALUE ...] -- <the task command line>

``--env`` sets a variable for the task: how an orchestrator hands a task a value that differs
per job (a Batch parameter placeholder fills a whole argument, never part of one).

The command line may be several, joined by a lone ``&&`` argument (``flow init … && flow
step …``): each runs in turn, and the first to fail ends the job with its exit status.

A requirement the image lacks is installed with pip first, so a stock Python image works;
an image that already has them (the usual case in production) starts the task at once. A
task of a @parallel gang learns here the address of its gang's main node.
"""

import hashlib
import importlib.metadata
import io
import json
import os
import re
import socket
import subprocess
import sys
import tarfile
import tempfile


def missing(requirements):
    absent = []
    for requirement in requirements:
        name = re.split(r"[\[<>=!~ ]", requirement, maxsplit=1)[0]
        try:
            importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            absent.append(requirement)
    return absent


def install(requirements):
    print(f"Installing what the image lacks: {', '.join(requirements)}", flush=True)
    result = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                             *requirements])
    if result.returncode != 0:
        sys.exit(f"the image lacks {', '.join(requirements)} and pip could not install them; "
                 "use an image that has them (METAFLOW_BATCH_CONTAINER_IMAGE or @batch(image=...))")


def fetch(url):
    import boto3

    bucket, _, key = url[len("s3://"):].partition("/")
    client = boto3.client("s3", endpoint_url=os.environ.get("METAFLOW_S3_ENDPOINT_URL") or None)
    return client.get_object(Bucket=bucket, Key=key)["Body"].read()


def main_node_address():
    """Where a @parallel gang's main node is reached. Batch tells the other nodes of a
    multi-node job; the main node is this container."""
    told = os.environ.get("AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS")
    if told:
        return told
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"


def main(argv):
    url, digest, requirements = argv[0], argv[1], json.loads(argv[2])
    separator = argv.index("--")
    command = argv[separator + 1:]
    options = argv[3:separator]
    extra_env = {options[i + 1]: options[i + 2] for i in range(0, len(options), 3) if options[i] == "--env"}
    absent = missing(requirements)
    if absent:
        install(absent)
    data = fetch(url)
    if hashlib.sha256(data).hexdigest() != digest:
        sys.exit(f"the code package at {url} does not match its digest {digest}")
    workdir = tempfile.mkdtemp(prefix="flow-task-")
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar.getmembers():  # the package holds plain files under two folders, nothing else
            if not member.isfile() or member.name.startswith("/") or ".." in member.name.split("/"):
                sys.exit(f"the code package at {url} holds an unexpected entry {member.name!r}")
        tar.extractall(workdir)
    os.chdir(workdir)
    paths = [os.path.join(workdir, "lib"), os.environ.get("PYTHONPATH", "")]
    env = dict(os.environ, **extra_env, PYTHONPATH=os.pathsep.join(p for p in paths if p), PYTHONUNBUFFERED="1")
    if "MF_PARALLEL_NUM_NODES" in env:
        env["MF_PARALLEL_MAIN_IP"] = main_node_address()
    *first, last = split_commands(command)
    for each in first:
        sys.stdout.flush()
        status = subprocess.run(each, env=env).returncode
        if status != 0:
            sys.exit(status)
    sys.stdout.flush()
    os.execvpe(last[0], last, env)


def split_commands(words):
    commands = [[]]
    for word in words:
        if word == "&&":
            commands.append([])
        else:
            commands[-1].append(word)
    return [command for command in commands if command]


if __name__ == "__main__":
    main(sys.argv[1:])
