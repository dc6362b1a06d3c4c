"""The floor under `artifact_pair.py`: the same values made and read in a plain script."""

import numpy as np

SIZE = 128 * 1024 * 1024
ENTRIES = 1_000_000

array = np.random.default_rng(0).random(SIZE // 8)
table = {f"key-{i}": i for i in range(ENTRIES)}
assert len(array) == SIZE // 8 and len(table) == ENTRIES
