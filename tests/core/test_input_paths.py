"""A 10,000-way join's parent list never blows the command-line limit."""

from __future__ import annotations

from flow_core.backends.compute import TaskSpec
from flow_core.backends.local_storage import LocalStorage
from flow_core.datastore.cas import ContentAddressedStore
from flow_core.engine.input_paths import pack_input_paths, unpack_input_paths

ARG_MAX_ONE_ARGUMENT = 128 * 1024  # Linux's MAX_ARG_STRLEN


def test_short_lists_stay_inline(tmp_path):
    cas = ContentAddressedStore(LocalStorage(tmp_path))
    paths = ["1/a/2", "1/b/3"]
    assert pack_input_paths(cas, paths) == tuple(paths)
    assert unpack_input_paths(cas, paths) == tuple(paths)


def test_ten_thousand_parents_travel_by_reference(tmp_path):
    cas = ContentAddressedStore(LocalStorage(tmp_path))
    paths = [f"12345/each/{n}" for n in range(10_000, 20_000)]
    packed = pack_input_paths(cas, paths)
    spec = TaskSpec(flow_file="f.py", flow_name="F", run_id="12345", step_name="join", task_id="20001",
                    input_paths=packed)
    assert max(len(arg) for arg in spec.command()) < 200 < ARG_MAX_ONE_ARGUMENT
    assert unpack_input_paths(ContentAddressedStore(LocalStorage(tmp_path)), packed) == tuple(paths)
