"""Time to save an artifact at the end of one step and load it in the next.

The step measures from its last line to the moment the next step has the value, and the
harness subtracts the same measurement for a tiny value, which leaves the save and the load
(task launch cost drops out).
"""

import os
import time

from FRAMEWORK import FlowSpec, step


def make_value(kind: str, size: int):
    if kind == "array":
        import numpy as np

        return np.random.default_rng(0).random(size // 8)  # float64, `size` bytes
    if kind == "dict":
        return {f"key-{i}": i for i in range(size)}
    raise ValueError(kind)


class ArtifactBench(FlowSpec):
    @step
    def start(self):
        self.value = make_value(os.environ["BENCH_KIND"], int(os.environ["BENCH_SIZE"]))
        self.t0 = time.time()
        self.next(self.end)

    @step
    def end(self):
        len(self.value)
        print("BENCH_SECONDS", time.time() - self.t0)


if __name__ == "__main__":
    ArtifactBench()
