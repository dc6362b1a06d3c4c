"""Record N finished runs of a flow in Flow's configured metadata backend."""

import sys

from flow_core.plugin.registry import current_settings, get_registry

flow_name, count = sys.argv[1], int(sys.argv[2])
settings = current_settings()
metadata = get_registry().create_backend("metadata", settings.backend_name("metadata"), settings)
with metadata.batch():
    for _ in range(count):
        run = metadata.new_run(flow_name, "bench", system_tags=["user:bench"])
        metadata.finish_run(flow_name, run.run_id, True)
