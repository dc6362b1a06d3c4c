import os

from FRAMEWORK import FlowSpec, step


class ForeachBench(FlowSpec):
    """WIDTH trivial tasks in a foreach and a join that sums them."""

    @step
    def start(self):
        self.items = list(range(int(os.environ["BENCH_WIDTH"])))
        self.next(self.work, foreach="items")

    @step
    def work(self):
        self.value = self.input * 2
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.value for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        print("total", self.total)


if __name__ == "__main__":
    ForeachBench()
