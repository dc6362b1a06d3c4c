"""List every run of a flow through the framework's client, as a notebook would."""

import sys
import time

from FRAMEWORK import Flow, namespace

namespace(None)
started = time.time()
runs = [(run.id, run.created_at) for run in Flow(sys.argv[1])]
print("BENCH_SECONDS", time.time() - started)
print("BENCH_COUNT", len(runs))
