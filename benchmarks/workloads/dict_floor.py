"""The floor under the dict row of `artifact.py`: the fastest pickle round trip of the same
dict in a plain script (fast mode, no memo), with no framework and no storage. Any framework
that hands a dict from one process to another pays at least this."""

import io
import pickle
import time

table = {f"key-{i}": i for i in range(1_000_000)}
started = time.time()
out = io.BytesIO()
pickler = pickle.Pickler(out, protocol=pickle.HIGHEST_PROTOCOL)
pickler.fast = True
pickler.dump(table)
assert len(pickle.loads(out.getbuffer())) == len(table)
print("BENCH_SECONDS", time.time() - started)
