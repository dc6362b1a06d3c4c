"""A @parallel gang on AWS Batch runs as one multi-node job: moto starts one container per
node from the job definition's node ranges, all at once, and tells the other nodes the main
node's address (``AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS``). moto does not apply a
submission's ``nodeOverrides`` nor set ``AWS_BATCH_JOB_NODE_INDEX``, so each node's command
and index live in the gang's own job definition, as they may on AWS too."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys

import boto3
from flow_core.testing import run_id_of

GANG_FLOW = """
import platform
import time

from flow_core import FlowSpec, batch, current, parallel, step


class Gang(FlowSpec):
    @step
    def start(self):
        self.next(self.train, num_parallel=3)

    @batch(cpu=1, memory=512)
    @parallel
    @step
    def train(self):
        self.node = (current.parallel.node_index, current.parallel.num_nodes)
        self.main_ip = current.parallel.main_ip
        self.python = platform.python_version()
        self.began = time.time()
        time.sleep(3)  # long enough that nodes started one after another could not overlap
        self.ended = time.time()
        self.next(self.join)

    @step
    def join(self, inputs):
        self.nodes = sorted(i.node for i in inputs)
        self.together = max(i.began for i in inputs) < min(i.ended for i in inputs)
        self.main_ips = sorted({i.main_ip for i in inputs})
        self.pythons = sorted({i.python for i in inputs})
        self.next(self.end)

    @step
    def end(self):
        print("gang of", len(self.nodes))
"""

READ_GANG = """
import json, sys
from flow_core import Run, namespace
namespace(None)
run = Run(sys.argv[1])
join = run["join"].task
print(json.dumps({"successful": run.successful, "nodes": join["nodes"].data, "together": join["together"].data,
                  "main_ips": join["main_ips"].data, "pythons": join["pythons"].data,
                  "train_tasks": len(list(run["train"])), "code": run.code.flowspec if run.code else None}))
"""


def test_a_gang_runs_as_one_multi_node_job_with_its_nodes_together(batch_env, flow_cli, flow_env, write_flow):
    result = flow_cli("run", str(write_flow("gang.py", GANG_FLOW)), "--compute", "batch", timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(re.findall(r"Submitted as node \d of the 3-node AWS Batch job", result.stdout)) == 3, result.stdout

    run_id = run_id_of(result.stdout)
    read = subprocess.run([sys.executable, "-c", READ_GANG, f"Gang/{run_id}"], env={**os.environ, **flow_env},
                          capture_output=True, text=True)
    assert read.returncode == 0, read.stderr
    gang = json.loads(read.stdout)
    assert gang["successful"] and gang["train_tasks"] == 3
    assert gang["nodes"] == [[0, 3], [1, 3], [2, 3]]
    assert gang["together"], "the gang's nodes did not run at the same time"
    assert len(gang["main_ips"]) == 1 and gang["main_ips"][0]  # every node was told the same main node
    # All three nodes ran in containers of the image (Debian's Python, not this one), as one
    # multi-node Batch job; and the run records the code package it ran from.
    assert len(gang["pythons"]) == 1 and gang["pythons"] != [platform.python_version()]
    batch = boto3.client("batch")
    (job,) = [j for j in batch.list_jobs(jobQueue=batch_env["METAFLOW_BATCH_JOB_QUEUE"],
                                         jobStatus="SUCCEEDED")["jobSummaryList"] if "-train-" in j["jobName"]]
    (job,) = batch.describe_jobs(jobs=[job["jobId"]])["jobs"]
    assert job["nodeProperties"]["numNodes"] == 3
    assert "class Gang(FlowSpec)" in gang["code"]
    # The gang's job definition was its own, and is gone with the job.
    definition = batch.describe_job_definitions(jobDefinitions=[job["jobDefinition"]])["jobDefinitions"]
    assert [d["status"] for d in definition] == ["INACTIVE"]


FAILING_GANG = """
from flow_core import FlowSpec, current, parallel, step


class BadGang(FlowSpec):
    @step
    def start(self):
        self.next(self.train, num_parallel=2)

    @parallel
    @step
    def train(self):
        if current.parallel.node_index == 1:
            raise RuntimeError("node 1 gave up")
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass
"""


def test_a_gang_whose_node_raises_fails_the_run_with_that_nodes_exception(batch_env, flow_cli, write_flow):
    result = flow_cli("run", str(write_flow("bad_gang.py", FAILING_GANG)), "--compute", "batch", timeout=600)
    assert result.returncode != 0
    assert "RuntimeError: node 1 gave up" in result.stderr.strip().splitlines()[-1], result.stderr
