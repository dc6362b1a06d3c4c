"""Make N runs of a flow in Metaflow's local metadata by copying one real run.

Metaflow's local metadata is a folder per run whose JSON files name the run; each copy
gets a new id, written into its files too, so the client sees N distinct, complete runs.
"""

import os
import shutil
import sys
import time

root, flow_name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
flow_dir = os.path.join(root, ".metaflow", flow_name)
(original,) = [d for d in os.listdir(flow_dir) if d.isdigit()]
base = int(time.time() * 1e6)
for n in range(1, count):
    new_id = str(base + n)
    target = os.path.join(flow_dir, new_id)
    shutil.copytree(os.path.join(flow_dir, original), target)
    for folder, _dirs, files in os.walk(target):
        for name in files:
            path = os.path.join(folder, name)
            if name.endswith(".json"):
                with open(path) as handle:
                    text = handle.read()
                with open(path, "w") as handle:
                    handle.write(text.replace(original, new_id))
