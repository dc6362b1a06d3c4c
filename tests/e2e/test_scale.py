"""A wide foreach: ten thousand forked tasks and one join that reads them all."""

from __future__ import annotations

WIDE = """
    from flow_core import FlowSpec, step

    class Wide(FlowSpec):
        @step
        def start(self):
            self.items = list(range(10_000))
            self.next(self.each, foreach="items")

        @step
        def each(self):
            self.square = self.input * self.input
            self.next(self.join)

        @step
        def join(self, inputs):
            self.total = sum(i.square for i in inputs)
            self.first_last = (inputs[0].square, inputs[-1].square)
            self.count = len(list(inputs))
            self.next(self.end)

        @step
        def end(self):
            pass
"""


def test_a_ten_thousand_way_join(write_flow, flow_cli, records):
    result = flow_cli("--quiet", "run", str(write_flow("wide.py", WIDE)), "--max-num-splits", "10000",
                      timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    run_id = run_id_of_done(result.stdout)
    assert records.artifact("Wide", run_id, "end", "total") == sum(i * i for i in range(10_000))
    assert records.artifact("Wide", run_id, "end", "first_last") == (0, 9999 * 9999)
    assert records.artifact("Wide", run_id, "end", "count") == 10_000
    tasks = records.metadata.list_tasks("Wide", run_id, "each")
    assert len(tasks) == 10_000 and all(t.status == "succeeded" for t in tasks)


def run_id_of_done(output: str) -> str:
    """--quiet prints only the result line: ``Done! Run Wide/<id> …``."""
    return output.split("Done! Run Wide/", 1)[1].split()[0]
