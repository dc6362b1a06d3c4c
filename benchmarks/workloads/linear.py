from FRAMEWORK import FlowSpec, step


class LinearBench(FlowSpec):
    """Ten steps in a row, each adding one to a counter."""

    @step
    def start(self):
        self.n = 0
        self.next(self.s1)

    @step
    def s1(self):
        self.n += 1
        self.next(self.s2)

    @step
    def s2(self):
        self.n += 1
        self.next(self.s3)

    @step
    def s3(self):
        self.n += 1
        self.next(self.s4)

    @step
    def s4(self):
        self.n += 1
        self.next(self.s5)

    @step
    def s5(self):
        self.n += 1
        self.next(self.s6)

    @step
    def s6(self):
        self.n += 1
        self.next(self.s7)

    @step
    def s7(self):
        self.n += 1
        self.next(self.s8)

    @step
    def s8(self):
        self.n += 1
        self.next(self.end)

    @step
    def end(self):
        assert self.n == 8


if __name__ == "__main__":
    LinearBench()
