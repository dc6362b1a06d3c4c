"""A 128 MiB float64 array and a 1e6-entry dict, saved by one step and read by the next.

The harness times the whole `run` command and subtracts `artifact_pair_script.py`, the same
work with no framework, so what is left is what the framework adds to keep the two values.
"""

from FRAMEWORK import FlowSpec, step

SIZE = 128 * 1024 * 1024
ENTRIES = 1_000_000


class ArtifactPairBench(FlowSpec):
    @step
    def start(self):
        import numpy as np

        self.array = np.random.default_rng(0).random(SIZE // 8)
        self.table = {f"key-{i}": i for i in range(ENTRIES)}
        self.next(self.end)

    @step
    def end(self):
        assert len(self.array) == SIZE // 8 and len(self.table) == ENTRIES


if __name__ == "__main__":
    ArtifactPairBench()
